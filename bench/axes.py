"""Wall time of the axes workflow: sample+label, fit (40 axes), and `axes add`.

    python bench/axes.py --n 50000 [--device cpu] [--work runs/bench-axes] [--data DIR]

Measures, on the current device: building a sample cache of N faces (render + label +
embeddings), fitting one GLM axis per attribute, and adding a new axis from CelebA labels
(a column treated as new, on the subset's train partition). Baseline in the same run: the
raw generator + extractor forward rate on the same device, so the sampling overhead of our
orchestration shows as a ratio.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

# `python bench/x.py` puts bench/ first on sys.path, where axes.py and api.py would shadow our
# packages: replace it with the repository root and import the helpers as bench.common.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
from bench.common import median_time, print_table  # noqa: E402
from tlgan.assembly import load_pipeline  # noqa: E402
from tlgan.axis_work.sampling import build_sample_cache  # noqa: E402
from tlgan.axis_work.workflow import add_axis, fit_bundle, read_labels  # noqa: E402
from tlgan.latents import sample_latents  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "bench-axes")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/celeba-subset")
    ap.add_argument("--column", default="Smiling", help="CelebA column used as the 'new' axis")
    ap.add_argument("--keep", action="store_true", help="Reuse an existing sample cache")
    args = ap.parse_args()
    models = load_pipeline(bundle="none", device=args.device)  # default generator + extractor
    gen, ext = models.generator, models.extractor
    assert ext is not None
    samples, bundle = args.work / "samples", args.work / "bundle"

    z = sample_latents(range(256), gen.latent_size)
    zt = torch.as_tensor(z, device=gen.device)

    def raw() -> None:
        with torch.inference_mode():
            ext.forward_tensor((gen.module(zt) + 1) / 2)
        if gen.device.type == "cuda":
            torch.cuda.synchronize()

    raw_rate = 256 / median_time(raw, 3)
    rows = []
    if not (args.keep and samples.is_dir()):
        shutil.rmtree(samples, ignore_errors=True)
        t0 = time.perf_counter()
        build_sample_cache(gen, ext, samples, n=args.n, seed=0)
        t_sample = time.perf_counter() - t0
        rows.append(["sample+label", args.n, t_sample, f"{args.n / t_sample:.0f} faces/s "
                     f"(raw forward {raw_rate:.0f}/s, ratio {args.n / t_sample / raw_rate:.2f})"])
    t0 = time.perf_counter()
    b = fit_bundle(samples, bundle)
    t_fit = time.perf_counter() - t0
    rows.append(["fit", len(b.names), t_fit, f"{b.provenance.get('method')}"])
    labelled = read_labels(args.data / "list_attr_celeba.txt", args.data, args.column)
    # the train partition only, like a user's own labelled set
    part = {}
    for line in (args.data / "list_eval_partition.txt").read_text().splitlines():
        name, p = line.split()
        part[name] = int(p)
    keep = [i for i, p in enumerate(labelled.paths) if part.get(p.name) == 0]
    labelled.paths = [labelled.paths[i] for i in keep]
    labelled.labels = labelled.labels[keep]
    name = f"{args.column}_new"
    t0 = time.perf_counter()
    new, figures = add_axis(name, labelled, bundle, ext, samples=samples)
    t_add = time.perf_counter() - t0
    cos = float(new.direction(name) @ new.direction(args.column))
    rows.append(["axes add", len(labelled.labels), t_add,
                 f"embed {figures['embed_s']}s head {figures['head_s']}s fit {figures['fit_s']}s;"
                 f" head AUC {figures['head_val_auc']:.3f}; cos to {args.column} {cos:.3f}"])
    print(f"device={gen.device} torch_threads={torch.get_num_threads()} n={args.n} "
          f"generator={gen.name} extractor={ext.name}")
    print_table(["step", "items", "seconds", "notes"], rows)
    np.set_printoptions(precision=3)


if __name__ == "__main__":
    main()
