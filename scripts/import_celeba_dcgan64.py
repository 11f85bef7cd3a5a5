"""Package the supplied pretrained CelebA DCGAN as the shipped ``celeba-dcgan64`` weights folder.

Run once (already done; the result is committed under
``tlgan/generators/weights/celeba-dcgan64``):

    .venv/bin/python scripts/import_celeba_dcgan64.py \
        --source ../shared/models/celeba-dcgan64-pretrained

It checks the file's sha256 against the one the source README gives, loads it strictly into our
own ``DCGANGenerator`` (the network is defined here, never imported from elsewhere), and writes
a ``generator-weights`` artifact folder whose ``config.json`` records the provenance truthfully:
pretrained by a plain DCGAN recipe on the CelebA subset's partition 0, not by
``tlgan generator train``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

EXPECTED_SHA256 = "e9ebbb42e04fcec37fe0b0faa094d6f1f61b10ef6e5ddfae4b4b792b8ff36902"
OUT = Path(__file__).resolve().parents[1] / "tlgan" / "generators" / "weights" / "celeba-dcgan64"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, required=True,
                    help="folder with generator.safetensors and README.md")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    from safetensors.torch import load_file

    from tlgan.generators.dcgan import DCGANGenerator
    from tlgan_base.artifact import atomic_artifact_dir, save_config, sha256_file

    src = args.source / "generator.safetensors"
    if not src.is_file():
        print(f"error: --source: {src} does not exist", file=sys.stderr)
        return 2
    actual = sha256_file(src)
    if actual != EXPECTED_SHA256:
        print(f"error: --source: {src} has sha256 {actual}, expected {EXPECTED_SHA256}",
              file=sys.stderr)
        return 2
    module = DCGANGenerator(nz=100, ngf=64, nc=3)
    module.load_state_dict(load_file(str(src)), strict=True)
    n_params = sum(p.numel() for p in module.parameters())
    config = {
        "kind": "generator-weights",
        "name": "celeba-dcgan64",
        "architecture": {"name": "dcgan", "kwargs": {"nz": 100, "ngf": 64, "nc": 3}},
        "latent_size": 100,
        "resolution": 64,
        "value_range": [-1.0, 1.0],
        "latent_distribution": "z ~ N(0, I) in R^100",
        "parameters": n_params,
        "created_by": ("pretrained outside tlgan by a plain DCGAN recipe and supplied as data "
                       "(../shared/models/celeba-dcgan64-pretrained); NOT trained by "
                       "`tlgan generator train`"),
        "imported_by": "scripts/import_celeba_dcgan64.py",
        "source_sha256": actual,
        "data": {
            "dataset": "CelebA aligned crops: the shared celeba-subset (15,697 crops at "
                       "128x128 from CelebA's test split), partition 0 only (12,552 images); "
                       "no image of partitions 1-2 was seen",
            "preprocessing": "128px resized to 64px, random horizontal flip",
        },
        "recipe": {
            "name": "plain DCGAN (PyTorch DCGAN tutorial)",
            "loss": "BCE", "optimizer": "Adam lr 2e-4 betas (0.5, 0.999)", "batch": 128,
            "init": "N(0, 0.02)", "iterations": 26700, "epochs_approx": 272,
            "torch_seed": 5, "hardware": "one GPU, 278 s",
            "not_used": ["EMA", "spectral norm", "hinge loss", "DiffAugment"],
        },
        "metrics_reported_by_source": {
            "fd_extractor_embedding": 70.1, "fd_floor_real_vs_real": 56.5,
            "male_agreement_with_independent_model": "0.77-0.82",
            "warped_faces_at_psi_1": "about one in three",
        },
        "licence": ("weights redistributed with tlgan under its licence (MIT); they were "
                    "trained on CelebA images, which are available for non-commercial "
                    "research purposes only: check CelebA's terms before any commercial use"),
    }
    with atomic_artifact_dir(args.out) as tmp:
        shutil.copyfile(src, tmp / "generator.safetensors")
        save_config(tmp, config)
    print(f"wrote {args.out} ({n_params:,} parameters, sha256 {actual[:12]}...)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
