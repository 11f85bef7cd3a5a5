"""Fitting an axis bundle from a sample cache, and adding a new axis from user labels.

Orchestration only: the maths lives in ``axes`` (arrays in, arrays out); this module loads
artifacts, runs the extractor and writes results.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from axes.bundle import DEFAULT_REFERENCES, AxisBundle, build_bundle
from axes.fitting import DEFAULT_METHOD, FitResult, fit_axes, fit_one, reference_covariates
from axes.heads import accuracy_evidence, cross_validate, train_head
from axes.samples import SampleCache, load_samples
from tlgan_base.artifact import ArtifactError
from tlgan_base.celeba_layout import images_dir, split_rows
from tlgan_base.image_codec import load_image
from tlgan_base.progress import progress_bar
from tlgan_base.protocols import ImageEmbedder, JudgePipeline, LabellingPipeline

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def _tqdm_progress(total: int, desc: str) -> tuple[Callable[[int, int, str], None], Any]:
    bar = progress_bar(total=total, desc=desc, unit="axis")

    def progress(done: int, n: int, name: str) -> None:
        bar.set_postfix_str(name, refresh=False)
        bar.update(done - bar.n)

    return progress, bar


def fit_conditional(z: np.ndarray, probs: np.ndarray, names: list[str], refs: list[str], *,
                    method: str = DEFAULT_METHOD, holdout: float = 0.2, seed: int = 0,
                    progress: Callable[[int, int, str], None] | None = None) -> FitResult:
    """Fit every attribute's raw axis, the non-reference ones *conditional on the references*:
    with the reference attributes' logits as covariates (``axes.fitting.fit_axes``), so an
    axis is what changes its attribute while the references' outputs stay put. Reference
    axes are fitted plainly (they are disentangled from each other afterwards). Returns one
    ``FitResult`` in the order of ``names``."""
    ref_cols = [names.index(r) for r in refs]
    others = [i for i in range(len(names)) if i not in ref_cols]
    done = [0]

    def step(_d: int, _n: int, name: str) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], len(names), name)

    parts = []
    for cols, cov in ((ref_cols, None),
                      (others, reference_covariates(probs[:, ref_cols]) if ref_cols else None)):
        if cols:
            parts.append((cols, fit_axes(z, probs[:, cols], [names[i] for i in cols],
                                         method=method, holdout=holdout, seed=seed,
                                         progress=step, covariates=cov)))
    axes = np.zeros((len(names), z.shape[1]))
    stats: list[dict[str, Any]] = [{} for _ in names]
    for cols, part in parts:
        axes[cols] = part.axes
        for k, i in enumerate(cols):
            stats[i] = {**part.stats[k], "conditioned_on": [] if i in ref_cols else list(refs)}
    first = parts[0][1]
    return FitResult(names=list(names), axes=axes, stats=stats, method=first.method,
                     holdout=first.holdout, seed=first.seed, n=first.n,
                     latent_size=first.latent_size,
                     seconds=sum(part.seconds for _, part in parts))


def fit_bundle(samples: str | Path, out: str | Path, *,
               references: list[str] | None = None, method: str = DEFAULT_METHOD,
               holdout: float = 0.2, seed: int = 0, conditional: bool = True,
               progress: bool = True) -> AxisBundle:
    """Fit one GLM axis per attribute of a sample cache and write an orthogonalized bundle.

    ``conditional`` (the default) fits the non-reference axes conditional on the references
    (:func:`fit_conditional`); ``False`` fits every axis on z alone (TL-GAN's way).
    """
    cache = load_samples(samples)
    refs = list(DEFAULT_REFERENCES) if references is None else references
    unknown = [r for r in refs if r not in cache.attributes]
    if unknown:
        raise ValueError(f"reference: {', '.join(unknown)} not among the attributes "
                         f"({', '.join(cache.attributes)})")
    cb, bar = _tqdm_progress(len(cache.attributes), "fit") if progress else (None, None)
    try:
        if conditional:
            fit = fit_conditional(np.asarray(cache.z), np.asarray(cache.probs),
                                  list(cache.attributes), refs, method=method,
                                  holdout=holdout, seed=seed, progress=cb)
        else:
            fit = fit_axes(cache.z, cache.probs, cache.attributes, method=method,
                           holdout=holdout, seed=seed, progress=cb)
    finally:
        if bar is not None:
            bar.close()
    cfg = cache.config
    provenance = {
        "generator": cfg["generator"], "generator_sha256": cfg.get("generator_sha256"),
        "extractor": cfg["extractor"], "extractor_sha256": cfg.get("extractor_sha256"),
        "samples_id": cache.id, "samples_path": str(Path(samples).resolve()),
        "samples_seed": cfg.get("seed"), "truncation": cfg.get("truncation"),
        "fit_conditioning": ("non-reference axes fitted with the references' logits as "
                             "covariates" if conditional and refs else "none"),
    }
    bundle = build_bundle(fit, refs, provenance, latent_space=cache.latent_space)
    bundle.save(out)
    return bundle


# ---------------------------------------------------------------------------- add an axis
@dataclass
class LabelledImages:
    """Image paths with 0/1 labels, and where they came from."""

    paths: list[Path]
    labels: np.ndarray
    source: str


def read_labels(labels_file: str | Path, data: str | Path, column: str) -> LabelledImages:
    """Read labels for ``column`` from a CelebA-format attribute file or a CSV ``image,label``.

    Images are looked up in ``data/img_align_celeba/`` when that exists, else in ``data/``.
    Labels may be 1/-1, 1/0 or true/false. Every problem names the file and line.
    """
    labels_file, data = Path(labels_file), Path(data)
    if not labels_file.is_file():
        raise ValueError(f"labels: file {labels_file} does not exist")
    if not data.is_dir():
        raise ValueError(f"data: folder {data} does not exist")
    img_dir = images_dir(data)
    lines = labels_file.read_text(encoding="utf-8").splitlines()
    rows: list[tuple[int, str, str]] = []
    if labels_file.suffix.lower() == ".csv":
        reader = csv.reader(lines)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["image", "label"]:
            raise ValueError(f"labels: {labels_file} line 1: expected the header 'image,label'")
        for lineno, rec in enumerate(reader, start=2):
            if not rec or not "".join(rec).strip():
                continue
            if len(rec) != 2:
                raise ValueError(f"labels: {labels_file} line {lineno}: expected 2 fields")
            rows.append((lineno, rec[0].strip(), rec[1].strip()))
    else:  # CelebA format: count line, names line, then "file v1 v2 ..."
        if len(lines) < 2:
            raise ValueError(f"labels: {labels_file} is not a CelebA attribute file")
        names = lines[1].split()
        if column not in names:
            raise ValueError(f"labels: {labels_file} line 2 has no column {column!r} "
                             f"(columns: {', '.join(names)}); pass --column")
        col = names.index(column)
        for lineno, parts in split_rows(lines[2:], start=3):
            if len(parts) != len(names) + 1:
                raise ValueError(f"labels: {labels_file} line {lineno}: expected "
                                 f"{len(names) + 1} fields, found {len(parts)}")
            rows.append((lineno, parts[0], parts[col + 1]))
    paths, values = [], []
    for lineno, name, raw in rows:
        value = {"1": 1, "-1": 0, "0": 0, "true": 1, "false": 0}.get(raw.lower())
        if value is None:
            raise ValueError(f"labels: {labels_file} line {lineno}: label {raw!r} is not "
                             "1/-1, 1/0 or true/false")
        path = img_dir / name
        if not path.is_file():
            raise ValueError(f"labels: {labels_file} line {lineno}: image {path} is missing")
        paths.append(path)
        values.append(value)
    y = np.asarray(values, dtype=np.int64)
    if len(y) < 20 or y.sum() < 5 or (len(y) - y.sum()) < 5:
        raise ValueError(f"labels: need >= 20 images with >= 5 of each class, got {len(y)} "
                         f"images, {int(y.sum())} positive")
    return LabelledImages(paths, y, str(labels_file))


def embed_images(extractor: ImageEmbedder, paths: list[Path], batch: int = 256,
                 progress: bool = True) -> np.ndarray:
    """Extractor embeddings (N, E) of image files, decoded at the extractor's input size."""
    size = int(extractor.input_size)
    out = []
    with progress_bar(total=len(paths), desc="embed labelled images", unit="img",
                      enabled=progress) as bar:
        for start in range(0, len(paths), batch):
            chunk = paths[start : start + batch]
            images = np.stack([load_image(p, size) for p in chunk])
            _, emb = extractor.predict_with_embeddings(images)
            out.append(np.asarray(emb, dtype=np.float32))
            bar.update(len(chunk))
    return np.concatenate(out)


def check_new_name(bundle: AxisBundle, name: str, *, replace: bool = False,
                   replace_reference: bool = False, field: str = "name") -> None:
    """Refuse to overwrite an axis silently: a name the bundle has needs ``replace``, and a
    reference axis (every other axis is orthogonalized against it) needs
    ``replace_reference`` as well. ValueError naming ``field`` otherwise."""
    if not name or not name.strip():
        raise ValueError(f"{field}: must be a non-empty axis name")
    if name in bundle.references and not replace_reference:
        raise ValueError(f"{field}: {name!r} is a reference axis of the bundle (the other "
                         "axes are orthogonalized against it); replacing it re-orthogonalizes "
                         "every axis: pass --replace-reference to do that on purpose")
    if name in bundle.names and not (replace or replace_reference):
        raise ValueError(f"{field}: the bundle already has an axis {name!r}; pass --replace "
                         "to replace it or choose another name")


def held_axes(bundle: AxisBundle, name: str,
              orthogonal_to: list[str] | None) -> list[str] | None:
    """The axes a new axis holds as ``AxisBundle.add_axis`` takes them (None: every
    reference); ValueError naming ``orthogonal_to`` for an unknown axis."""
    if orthogonal_to is None:
        return None
    held = list(dict.fromkeys(str(h) for h in orthogonal_to))
    bad = [h for h in held if h not in bundle.names or h == name]
    if bad:
        raise ValueError(f"orthogonal_to: {bad[0]!r} is not another axis of the bundle; valid "
                         f"names: {', '.join(bundle.names)}")
    if sorted(held) == sorted(bundle.references) or name in bundle.references:
        return None  # what every axis holds: nothing to record
    return held


def bundle_samples(bundle: AxisBundle, samples: str | Path | None = None) -> SampleCache:
    """The sample cache to fit new axes on: ``samples`` when given, else the compact subset
    the bundle ships (``samples.npz``), else the full cache its provenance names when that
    is on this machine. Checked against the bundle (generator, extractor, latent space)."""
    if samples:
        cache = load_samples(samples)
        where = str(samples)
    elif bundle.has_samples:
        cache = bundle.load_samples()
        where = f"{bundle.source}/samples.npz"
    else:
        path = Path(str(bundle.provenance.get("samples_path") or ""))
        if not str(path) or not (path / "config.json").is_file():
            raise ValueError(f"samples: the bundle ships no sample subset and its sample cache "
                             f"{path} is not here; rebuild it with `tlgan axes sample` (same "
                             "--n/--seed) and pass --samples")
        cache, where = load_samples(path), str(path)
    if cache.latent_space != bundle.latent_space:
        raise ArtifactError(f"samples: cache {where} holds latents of space "
                            f"{cache.latent_space!r}, the bundle's axes live in "
                            f"{bundle.latent_space!r}")
    for key in ("generator", "extractor"):
        if cache.config.get(key) != bundle.provenance.get(key):
            raise ArtifactError(f"samples: cache {where} was made with {key} "
                                f"{cache.config.get(key)!r}, the bundle with "
                                f"{bundle.provenance.get(key)!r}")
    return cache


def fit_new_axis(bundle: AxisBundle, cache: SampleCache, p_new: np.ndarray, name: str, *,
                 method: str | None = None, seed: int = 0,
                 references: list[str] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Fit the raw axis of a new attribute from its probabilities ``p_new`` (N,) on the
    cache's samples, the way the bundle's own axes were fitted (GLM on z, conditional on the
    references' logits when they were; ``references``: which ones, None = the bundle's).
    Returns the raw unit axis (L,) and its stats."""
    prov = bundle.provenance
    refs = list(bundle.references) if references is None else list(references)
    conditional = (str(prov.get("fit_conditioning") or "none") != "none" and bool(refs)
                   and name not in refs and all(r in cache.attributes for r in refs))
    cov = (reference_covariates(np.asarray(cache.probs)[
        :, [cache.attributes.index(r) for r in refs]]) if conditional else None)
    raw, stats = fit_one(cache.z, p_new, name=name, method=method or prov.get("method")
                         or DEFAULT_METHOD, seed=seed, covariates=cov)
    if conditional:
        stats["conditioned_on"] = refs
    stats["samples"] = {"id": cache.id, "n": cache.n}
    return raw, stats


def add_axis(name: str, labelled: LabelledImages, bundle_dir: str | Path,
             extractor: ImageEmbedder, *,
             samples: str | Path | None = None, method: str | None = None, seed: int = 0,
             progress: bool = True, replace: bool = False, replace_reference: bool = False,
             force: bool = False, orthogonal_to: list[str] | None = None
             ) -> tuple[AxisBundle, dict[str, Any]]:
    """Add axis ``name``: a head on frozen embeddings labels the cached samples (the
    bundle's shipped subset unless ``samples`` is given), a GLM on z gives the raw axis, and
    the bundle orthogonalizes it against its references. An existing name needs
    ``replace``; a reference axis needs ``replace_reference``. Labels whose head is near
    chance (the 95% interval of its cross-validated accuracy reaches 0.5) raise ValueError
    naming ``labels`` unless ``force``. ``orthogonal_to``: the axes it holds (None: the
    bundle's references; recorded with the axis, see ``AxisBundle.add_axis``); it is fitted
    conditional on the references among them.

    Returns the new bundle (already saved to ``bundle_dir``) and timing/quality figures.
    """
    t0 = time.perf_counter()
    bundle = AxisBundle.load(bundle_dir)
    check_new_name(bundle, name, replace=replace, replace_reference=replace_reference)
    held = held_axes(bundle, name, orthogonal_to)
    prov = bundle.provenance
    if prov.get("extractor") not in (None, extractor.name):
        raise ArtifactError(f"bundle {bundle_dir} was fitted with extractor "
                            f"{prov.get('extractor')!r}, but {extractor.name!r} is loaded")
    cache = bundle_samples(bundle, samples)
    if cache.embeddings.shape[1] != extractor.embedding_size:
        raise ArtifactError(f"samples: cache embeddings have size {cache.embeddings.shape[1]}, "
                            f"the extractor's are {extractor.embedding_size}")
    t_load = time.perf_counter()
    emb = embed_images(extractor, labelled.paths, progress=progress)
    t_embed = time.perf_counter()
    head = train_head(emb, labelled.labels, seed=seed)
    cv = cross_validate(emb, labelled.labels, head.C, seed=seed)
    evidence = accuracy_evidence(None if cv is None else cv[0], len(labelled.labels))
    if evidence["near_chance"] and not force:
        raise ValueError(f"labels: {evidence['warning']}; nothing added (pass --force to add "
                         "it anyway)")
    p_new = head.predict_proba(cache.embeddings)
    t_head = time.perf_counter()
    raw, stats = fit_new_axis(bundle, cache, p_new, name, method=method, seed=seed,
                              references=None if held is None
                              else [r for r in held if r in bundle.references])
    t_fit = time.perf_counter()
    stats = {**stats, "source": "tlgan axes add", "labels": labelled.source,
             "labelled_images": len(labelled.labels),
             "labelled_positives": int(labelled.labels.sum()),
             "head": head.to_dict(), "head_val_auc": head.val_auc,
             "head_cv_accuracy": None if cv is None else cv[0],
             "head_cv_accuracy_low": evidence["cv_accuracy_low"],
             "head_cv_accuracy_high": evidence["cv_accuracy_high"],
             "near_chance": evidence["near_chance"]}
    new = bundle.add_axis(name, raw, stats, held=held)
    new.save(bundle_dir)
    t_end = time.perf_counter()
    figures = {
        "load_s": round(t_load - t0, 2), "embed_s": round(t_embed - t_load, 2),
        "head_s": round(t_head - t_embed, 2), "fit_s": round(t_fit - t_head, 2),
        "total_s": round(t_end - t0, 2), "head_val_auc": head.val_auc,
        "glm_auc_holdout": stats.get("auc_holdout"), "samples": cache.n,
        "labelled_images": len(labelled.labels),
        "head_cv_accuracy": None if cv is None else cv[0],
        "head_cv_accuracy_low": evidence["cv_accuracy_low"],
        "head_cv_accuracy_high": evidence["cv_accuracy_high"],
        "near_chance": evidence["near_chance"], "warning": evidence["warning"],
    }
    return new, figures


# ------------------------------------------------------------------ judge an axis bundle
def reference_drag(pipeline: LabellingPipeline, directions: np.ndarray, references: list[str], *,
                   faces: int = 100, distance: float = 3.0, seed: int = 9000,
                   progress: bool = True, space: str | None = None) -> np.ndarray:
    """How far each axis drags each reference, as ``pipeline``'s extractor sees it.

    Moves the faces of seeds ``seed .. seed + faces - 1`` from ``-distance`` to
    ``+distance`` along each row of ``directions`` (K, L) and returns (K, R): the mean change
    of P(reference) between the two ends, per axis and reference. ``space``: the generator
    latent space the directions live in (None: the pipeline's).
    """
    if faces < 1 or distance <= 0:
        raise ValueError("faces/distance: need faces >= 1 and distance > 0")
    missing = [r for r in references if r not in pipeline.attributes]
    if missing:
        raise ValueError(f"judge: the extractor has no attribute {missing[0]!r}")
    cols = [pipeline.attributes.index(r) for r in references]
    space = space or pipeline.latent_space
    gen = pipeline.generator
    z = gen.sample_latents(range(seed, seed + faces), 1.0, space).astype(np.float64)
    out = np.zeros((len(directions), len(references)))
    with progress_bar(total=len(directions), desc="judge", unit="axis",
                      enabled=progress) as bar:
        for k, d in enumerate(np.asarray(directions, dtype=np.float64)):
            lo, hi = (z - distance * d), (z + distance * d)
            probs = pipeline.label_latents(np.concatenate([lo, hi]).astype(np.float32), space)
            out[k] = probs[faces:, cols].mean(axis=0) - probs[:faces, cols].mean(axis=0)
            bar.update(1)
    return out


def judge_bundle(bundle_dir: str | Path, judge: JudgePipeline, *, faces: int = 100,
                 distance: float = 3.0, seed: int = 9000, progress: bool = True
                 ) -> AxisBundle:
    """Record in the bundle how far each axis drags each reference, measured by ``judge``
    (a pipeline of the bundle's generator with an extractor that did *not* label the
    bundle's samples): per axis the stats ``judge_drag_<reference>``, and the judge's name,
    sha256 and settings in the provenance (``reference_drag``). Rewrites the bundle."""
    bundle = AxisBundle.load(bundle_dir)
    ext = judge.extractor
    if ext is None:
        raise ValueError("judge: needs an extractor")
    if ext.sha256 == bundle.provenance.get("extractor_sha256"):
        raise ValueError(f"judge: {ext.name} labelled the bundle's samples; a judge must be "
                         "another extractor")
    gen = judge.generator
    if (bundle.provenance.get("generator") != gen.name
            or bundle.provenance.get("generator_sha256") not in (None, gen.sha256)):
        raise ArtifactError(f"bundle {bundle_dir} was fitted for generator "
                            f"{bundle.provenance.get('generator')!r}, but {gen.name!r} is "
                            "loaded; pass --generator")
    refs = list(bundle.references)
    drag = reference_drag(judge, np.asarray(bundle.directions), refs, faces=faces,
                          distance=distance, seed=seed, progress=progress,
                          space=bundle.latent_space)
    updates = {n: {f"judge_drag_{r}": round(float(drag[k, j]), 4)
                   for j, r in enumerate(refs) if r != n}
               for k, n in enumerate(bundle.names)}
    new = bundle.with_stats(updates, {"reference_drag": {
        "judge": ext.name, "judge_sha256": ext.sha256, "faces": faces, "distance": distance,
        "seeds": [seed, seed + faces - 1],
        "measure": "mean P(reference) at +distance minus at -distance along the axis"}})
    new.save(bundle_dir)
    return new
