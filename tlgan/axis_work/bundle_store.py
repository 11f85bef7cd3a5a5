"""Where axis bundles live, and loading one that matches the generator and extractor."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axes.bundle import AxisBundle, load
from tlgan_base.artifact import ArtifactError, atomic_artifact_dir, load_config
from tlgan_base.registry_entry import WeightsEntry, lookup

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "bundles"



@dataclass(frozen=True)
class BundleEntry(WeightsEntry):
    """A shipped axis bundle: ``location`` is its folder under ``tlgan/data/bundles/``;
    ``sha256`` is empty (the bundle's ``config.json`` checksums its files)."""

    generator: str

    @property
    def path(self) -> Path:
        """Absolute path of the bundle folder."""
        return DATA_DIR / self.location


#: the shipped bundle for each generator (by generator name); fitted with the default extractor.
BUNDLES: dict[str, BundleEntry] = {
    gen: BundleEntry(name=gen, location=gen, sha256="", generator=gen)
    for gen in ("celeba-dcgan64", "dcgan-digiface64")
}


def default_bundle_path(generator: str) -> Path:
    """The shipped bundle folder for a generator, or ArtifactError if there is none."""
    entry = lookup(BUNDLES, generator)
    if entry is None:
        raise ArtifactError(
            f"no axis bundle ships for generator {generator!r} (shipped: "
            f"{', '.join(BUNDLES)}); fit one with `tlgan axes sample` + `tlgan axes fit` "
            "and pass it with --bundle / TLGAN_BUNDLE"
        )
    return entry.path


def copy_default_bundle(generator: str, out: str | Path) -> dict[str, Any]:
    """Copy the bundle shipped for ``generator`` to the new folder ``out``, to add axes to.

    The shipped bundle is verified (every file's sha256) before copying, the copy is written
    to a temporary folder and renamed into place, then verified again. Only the files its
    ``config.json`` lists are copied. Returns the copy's config.

    Raises:
        ValueError: ``out`` already exists (naming ``out``).
        ArtifactError: no bundle ships for ``generator``, or the shipped one is corrupt.
    """
    out = Path(out)
    if out.exists():
        raise ValueError(f"out: {out} already exists; give a new folder (a copy never "
                         "overwrites)")
    src = default_bundle_path(generator)
    config = load_config(src, kind="axis-bundle")
    with atomic_artifact_dir(out, overwrite=False) as tmp:
        for name in [*config["files"], "config.json"]:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, tmp / name)
    return load_config(out, kind="axis-bundle")


def load_bundle(spec: str | Path | None, *, generator: str, latent_size: int,
                extractor: str | None = None, generator_sha256: str | None = None,
                extractor_sha256: str | None = None,
                spaces: Mapping[str, int] | None = None) -> AxisBundle:
    """Load a bundle folder (``None``: the one shipped for ``generator``), refusing a bundle
    fitted for another generator, latent size or extractor (by name and, when given, by the
    sha256 of their weights: a retrained extractor of the same name is another extractor).
    ``spaces`` ({name: size}, ``FaceGenerator.space_sizes()``): the bundle's latent space
    must be one of them (a "w" bundle is refused for a generator without "w")."""
    folder = Path(spec) if spec else default_bundle_path(generator)
    return load(folder, expect_generator=generator, expect_latent_size=latent_size,
                expect_extractor=extractor, expect_generator_sha256=generator_sha256,
                expect_extractor_sha256=extractor_sha256, expect_spaces=spaces)


def describe_bundles() -> list[dict[str, Any]]:
    """The shipped bundles (for ``tlgan info``), with their status."""
    out = []
    for bundle in BUNDLES.values():
        folder = bundle.path
        entry: dict[str, Any] = {"name": bundle.name, "generator": bundle.generator,
                                 "path": str(folder)}
        try:
            cfg = load_config(folder, kind="axis-bundle", verify=False)
        except ArtifactError as exc:
            entry["status"] = f"missing ({exc})"
        else:
            entry.update(status="ok", id=cfg.get("id"), axes=len(cfg.get("names", [])),
                         references=cfg.get("references"),
                         extractor=(cfg.get("provenance") or {}).get("extractor"))
        out.append(entry)
    return out
