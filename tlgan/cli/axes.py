"""``tlgan axes``: sample, fit, add and report feature axes."""

from __future__ import annotations

import json
from pathlib import Path

import click

from axes.fitting import DEFAULT_METHOD, FIT_METHODS
from tlgan.cli.options import count, device_option, generator_option, threads_option

extractor_option = click.option(
    "--extractor", default=None, show_default="registry DEFAULT",
    help="Registered extractor name or weights folder.",
)


@click.group()
def axes() -> None:
    """Feature axes: build the sample cache, fit axes, add your own, look at them.

    \b
    Examples:
      tlgan axes sample --n 50000 --seed 0 --out runs/samples
      tlgan axes fit --samples runs/samples --out runs/bundle
      tlgan axes report --bundle runs/bundle --out runs/report
    """


@axes.command()
@click.option("--n", "n", type=int, default=50_000, show_default=True, help="Number of samples.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Sample i is the face of seed SEED+i.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Sample-cache folder to write.")
@click.option("--truncation", type=float, default=1.0, show_default=True)
@click.option("--batch", type=int, default=256, show_default=True, help="Faces per forward pass.")
@click.option("--chunk", type=int, default=2048, show_default=True,
              help="Faces per resumable chunk.")
@click.option("--restart", is_flag=True,
              help="Discard an interrupted run made with other settings.")
@click.option("--space", default="z", show_default=True,
              help="Latent space to sample and fit axes in: z, or w for a generator with a "
                   "mapping network.")
@generator_option
@extractor_option
@device_option
@threads_option
def sample(n: int, seed: int, out: Path, truncation: float, batch: int, chunk: int,
           restart: bool, space: str, generator: str | None, extractor: str | None,
           device: str) -> None:
    """Render and label N seeded faces into a sample cache (z, probabilities, embeddings).

    An interrupted run resumes from its completed chunks when run again.

    \b
    Examples:
      tlgan axes sample --n 50000 --seed 0 --out runs/samples
      tlgan axes sample --n 2000 --out /tmp/samples --device cuda
    """
    from tlgan.assembly import load_pipeline
    from tlgan.axis_work.sampling import build_sample_cache
    from tlgan.latents import check_truncation

    check_truncation(truncation)
    if batch < 1 or chunk < 1:
        raise ValueError("batch/chunk: must be >= 1")
    models = load_pipeline(generator=generator, extractor=extractor, bundle="none",
                           device=device)
    if models.extractor is None:
        raise ValueError("extractor: sampling labels every face; give an extractor, not none")
    path = build_sample_cache(models.generator, models.extractor, out, n=n, seed=seed,
                              truncation=truncation,
                              chunk=chunk, batch=batch, restart=restart, space=space)
    click.echo(f"wrote sample cache {path} ({count(n, 'face')})")


@axes.command()
@click.option("--samples", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Sample-cache folder (from `tlgan axes sample`).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Axis-bundle folder to write.")
@click.option("--reference", default="Male,Young", show_default=True,
              help="Reference axes (comma-separated) the others are orthogonalized against; "
                   "'' for none.")
@click.option("--method", type=click.Choice(list(FIT_METHODS)),
              default=DEFAULT_METHOD, show_default=True,
              help="glm-binomial: binomial GLM on probabilities; linear-logit: TL-GAN's OLS on "
                   "logit(p); logit-binary: logit on p>0.5.")
@click.option("--holdout", type=float, default=0.2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the held-out split.")
@click.option("--conditional/--no-conditional", default=True, show_default=True,
              help="Fit non-reference axes with the references' logits as covariates, so an "
                   "axis changes its attribute while the references' outputs stay put.")
def fit(samples: Path, out: Path, reference: str, method: str, holdout: float, seed: int,
        conditional: bool) -> None:
    """Fit one axis per attribute and write an orthogonalized axis bundle.

    Reference axes are disentangled from each other; every other axis is fitted conditional
    on the references (unless --no-conditional) and projected off their span.

    \b
    Examples:
      tlgan axes fit --samples runs/samples --out runs/bundle
      tlgan axes fit --samples runs/samples --out runs/bundle-tl --method linear-logit \
          --no-conditional
      tlgan axes fit --samples runs/samples --out runs/bundle --reference Male,Young,Smiling
    """
    from tlgan.axis_work.workflow import fit_bundle

    refs = [r.strip() for r in reference.split(",") if r.strip()]
    bundle = fit_bundle(samples, out, references=refs, method=method, holdout=holdout,
                        seed=seed, conditional=conditional)
    aucs = [float(s["auc_holdout"]) for s in bundle.stats if s.get("auc_holdout") is not None]
    click.echo(f"wrote bundle {out} (id {bundle.id}, {count(len(bundle.names), 'axis', 'axes')}, "
               f"references "
               f"{', '.join(bundle.references) or 'none'}, mean held-out AUC "
               f"{sum(aucs) / max(len(aucs), 1):.3f})")


@axes.command()
@click.argument("name")
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="CelebA-format attribute file (with a NAME or --column column) or a CSV "
                   "with header 'image,label'.")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder with the labelled images (or a CelebA dir with img_align_celeba/).")
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Axis-bundle folder to add the axis to (rewritten atomically).")
@click.option("--column", default=None, show_default="NAME",
              help="Column of a CelebA-format file to read the labels from.")
@click.option("--samples", type=click.Path(file_okay=False, path_type=Path), default=None,
              show_default="the bundle's sample cache", help="Sample-cache folder.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--replace", is_flag=True, help="Replace an axis of that name.")
@click.option("--replace-reference", is_flag=True,
              help="Allow replacing a reference axis (re-orthogonalizes every axis).")
@click.option("--force", is_flag=True,
              help="Add the axis even when the labels look near chance (the 95% interval of "
                   "the head's cross-validated accuracy reaches 0.5).")
@click.option("--orthogonal-to", default=None, show_default="the bundle's references",
              help="Comma-separated axes the new one holds ('' for none); recorded with it.")
@extractor_option
@device_option
@threads_option
def add(name: str, labels: Path, data: Path, bundle: Path, column: str | None,
        samples: Path | None, seed: int, replace: bool, replace_reference: bool,
        force: bool, orthogonal_to: str | None, extractor: str | None, device: str) -> None:
    """Add a new axis NAME from your own labelled face images.

    A logistic head on the frozen extractor embeddings learns NAME from your labels, labels
    the cached samples, a GLM on z gives the axis, and it is orthogonalized against the
    bundle's references (or the axes of --orthogonal-to, recorded with it). When the labels
    look near chance (the 95% interval of the head's cross-validated accuracy reaches 0.5)
    it says so and adds nothing unless --force.

    \b
    Examples:
      tlgan axes add Smiling_mine --labels labels.csv --data my_faces/ --bundle runs/bundle
      tlgan axes add Bangs2 --column Bangs --labels celeba/list_attr_celeba.txt \\
          --data celeba/ --bundle runs/bundle
    """
    from feature_extractor.extractor_weights import load_extractor
    from tlgan.axis_work.workflow import add_axis, read_labels

    labelled = read_labels(labels, data, column or name)
    ext = load_extractor(extractor, device)
    refs = None if orthogonal_to is None else [r.strip() for r in orthogonal_to.split(",")
                                               if r.strip()]
    new, figures = add_axis(name, labelled, bundle, ext, samples=samples, seed=seed,
                            replace=replace, replace_reference=replace_reference, force=force,
                            orthogonal_to=refs)
    if figures.get("warning"):
        click.echo(f"warning: {figures['warning']}; added anyway (--force)", err=True)
    click.echo(json.dumps({"axis": name, "bundle": str(bundle), "id": new.id, **figures},
                          indent=2))


@axes.command("copy-default")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--generator", default=None, show_default="registry DEFAULT",
              help="Copy the bundle shipped for this registered generator.")
def copy_default(out: Path, generator: str | None) -> None:
    """Copy the shipped axis bundle to the new folder OUT, to add your own axes to.

    The shipped bundles live inside the installed package and are not for editing. The copy
    is verified and written atomically; an existing OUT is refused. It carries the shipped
    samples, so `tlgan axes add` and `tlgan axes teach` work on it at once.

    \b
    Examples:
      tlgan axes copy-default runs/bundle
      tlgan axes add Bangs_mine --column Bangs --labels celeba/list_attr_celeba.txt \\
          --data celeba/ --bundle runs/bundle
      TLGAN_BUNDLE=runs/bundle tlgan serve
    """
    from tlgan.axis_work.bundle_store import copy_default_bundle
    from tlgan.generators.generator_weights import DEFAULT

    config = copy_default_bundle(generator or DEFAULT, out)
    click.echo(f"wrote bundle {out} (id {config['id']}, "
               f"{count(len(config['names']), 'axis', 'axes')}, a copy of the bundle shipped "
               f"for {generator or DEFAULT}); add axes with: tlgan axes add NAME --bundle {out}")


replace_options = [
    click.option("--replace", is_flag=True, help="Replace an axis of that name."),
    click.option("--replace-reference", is_flag=True,
                 help="Allow replacing a reference axis (re-orthogonalizes every axis)."),
]


@axes.command()
@click.argument("name")
@click.option("--examples", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="JSONL ({\"latent\": [...] or \"seed\": N, \"label\": 0|1} per line) or CSV "
                   "(label plus seed or z0..z{L-1} columns). A label may be a grade in "
                   "[0, 1] (0.25: a little less, 0.75: a little more) or unsure (null, "
                   "'unsure' or '?': left out, counted).")
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Axis-bundle folder to add the axis to (rewritten atomically); it must "
                   "ship its sample subset (samples.npz).")
@click.option("--orthogonal-to", default=None, show_default="the bundle's references",
              help="Comma-separated axes the new one is orthogonal to ('' for none).")
@click.option("--seed", type=int, default=0, show_default=True)
@replace_options[0]
@replace_options[1]
@click.option("--force", is_flag=True,
              help="Save the axis even when the marks look near chance (the 95% interval of "
                   "the cross-validated accuracy reaches 0.5).")
@generator_option
@extractor_option
@device_option
@threads_option
def teach(name: str, examples: Path, bundle: Path, orthogonal_to: str | None, seed: int,
          replace: bool, replace_reference: bool, force: bool, generator: str | None,
          extractor: str | None, device: str) -> None:
    """Teach a new axis NAME from marked faces (latents or seeds labelled 0/1).

    Mark only the faces you are sure about: label the others unsure (they are left out and
    counted), or grade them (0, 0.25, 0.5, 0.75, 1). Marks of faces near the boundary are
    coin flips: on the bench (docs/axes.md) 40 sure marks taught an "Older" that moves age
    further than 60 marks of random faces did.

    The faces are rendered and embedded, a logistic head (a ridge head on grades) learns
    NAME, scores the bundle's shipped samples, and a GLM on z gives the axis; it is added
    with its head (so NAME gets
    a probability in `features` and can be a `features` target) and its provenance. It
    holds the axes of --orthogonal-to (recorded with the axis; default: the references).
    When the marks look near chance (the 95% interval of the head's cross-validated accuracy
    reaches 0.5) it says so and saves nothing unless --force.

    \b
    Examples:
      tlgan axes teach Freckles --examples marks.jsonl --bundle runs/bundle
    """
    from tlgan.assembly import load_pipeline
    from tlgan.axis_work.teaching import add_to_bundle, read_examples, teach_axis
    from tlgan.axis_work.workflow import check_new_name

    pipeline = load_pipeline(generator=generator, extractor=extractor, bundle=bundle,
                             device=device)
    assert pipeline.bundle is not None
    check_new_name(pipeline.bundle, name, replace=replace, replace_reference=replace_reference)
    latents, labels = read_examples(examples, pipeline)
    refs = None if orthogonal_to is None else [r.strip() for r in orthogonal_to.split(",")
                                               if r.strip()]
    taught = teach_axis(pipeline, name, latents, labels, refs, seed=seed,
                        allow_existing=replace or replace_reference)
    for note in taught.stats["notes"]:
        click.echo(f"note: {note}", err=True)
    if taught.stats["near_chance"]:
        if not force:
            raise ValueError(f"examples: {taught.stats['warning']}; nothing saved (pass "
                             "--force to save it anyway)")
        click.echo(f"warning: {taught.stats['warning']}; saved anyway (--force)", err=True)
    stats = {**taught.stats, "source": "tlgan axes teach", "examples_file": examples.name}
    new = add_to_bundle(bundle, name, taught.raw_direction, taught.head, stats,
                        replace=replace, replace_reference=replace_reference,
                        held=taught.stats["orthogonal_to"])
    click.echo(json.dumps({"axis": name, "bundle": str(bundle), "id": new.id,
                           **{k: taught.stats[k] for k in (
                               "examples", "positives", "negatives", "unsure", "graded",
                               "head_cv_accuracy",
                               "head_cv_accuracy_low", "head_cv_accuracy_high",
                               "near_chance", "total_s")}}, indent=2))


@axes.command("import")
@click.argument("name")
@click.option("--direction", "direction_file", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="JSON {\"direction\": [...], \"head\": {...}?, \"stats\": "
                                  "{...}?} (POST /axes/fit's answer, the web page's export).")
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Axis-bundle folder to add the axis to (rewritten atomically).")
@replace_options[0]
@replace_options[1]
def import_(name: str, direction_file: Path, bundle: Path, replace: bool,
            replace_reference: bool) -> None:
    """Import an axis NAME from a direction JSON (with its head, if it has one).

    The axes it holds are its stats' `orthogonal_to` (as POST /axes/fit answers; default:
    the bundle's references); they are recorded with the axis.

    \b
    Examples:
      tlgan axes import Freckles --direction freckles.json --bundle runs/bundle
    """
    from axes.bundle import AxisBundle
    from tlgan.axis_work.teaching import add_to_bundle, read_direction
    from tlgan.axis_work.workflow import check_new_name

    current = AxisBundle.load(bundle)
    check_new_name(current, name, replace=replace, replace_reference=replace_reference)
    direction, head, stats = read_direction(direction_file, current.latent_size)
    if head is not None and current.has_samples:
        size = current.load_samples().embeddings.shape[1]
        if head.embedding_size != size:
            raise ValueError(f"head: weights for embeddings of size {head.embedding_size}, "
                             f"the bundle's extractor gives {size}")
    stats = {**stats, "name": name, "source": "tlgan axes import",
             "direction_file": str(direction_file)}
    stats.pop("coef_norm_source", None)
    new = add_to_bundle(bundle, name, direction, head, stats, replace=replace,
                        replace_reference=replace_reference, held=stats.get("orthogonal_to"))
    click.echo(json.dumps({"axis": name, "bundle": str(bundle), "id": new.id,
                           "head": head is not None,
                           "examples": stats.get("examples"),
                           "head_cv_accuracy": stats.get("head_cv_accuracy")}, indent=2))


@axes.command("ship-samples")
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Axis-bundle folder (rewritten atomically).")
@click.option("--samples", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The sample cache the bundle was fitted on (or one of its generator and "
                   "extractor).")
@click.option("--n", "n", type=int, default=5000, show_default=True,
              help="Ship the cache's first N samples.")
def ship_samples(bundle: Path, samples: Path, n: int) -> None:
    """Ship a compact subset of a sample cache inside a bundle (samples.npz, float16), so
    `tlgan axes add/teach` and POST /axes/fit work without the full cache.

    \b
    Examples:
      tlgan axes ship-samples --bundle runs/bundle --samples runs/samples --n 5000
    """
    from axes.bundle_attach import attach_samples
    from axes.samples import load_samples

    cache = load_samples(samples, mmap=True)
    if not 1 <= n <= cache.n:
        raise ValueError(f"n: must be in 1..{cache.n} (the cache's size), got {n}")
    new = attach_samples(bundle, cache, n, source=str(samples))
    size = (bundle / "samples.npz").stat().st_size
    click.echo(f"shipped {count(n, 'sample')} of {samples} in {bundle}/samples.npz "
               f"({size / 2**20:.2f} MiB; bundle id {new.id})")


@axes.command()
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Axis-bundle folder that ships samples (rewritten atomically).")
@click.option("--faces", type=int, default=160, show_default=True,
              help="Shipped samples the masks are learned on.")
@extractor_option
@generator_option
@device_option
@threads_option
def masks(bundle: Path, faces: int, extractor: str | None, generator: str | None,
          device: str) -> None:
    """Learn the local-edit masks of a bundle's axes and ship them in it (masks.npz).

    Each local axis's mask marks where a move along it changes what the extractor reads
    as its attribute (tlgan.pipeline.locality); the references and axes whose mask would cover most
    of the image stay global. POST /edit uses them with `locality`.

    \b
    Examples:
      tlgan axes masks --bundle tlgan/data/bundles/celeba-dcgan64
    """
    from axes.bundle_attach import attach_masks
    from tlgan.assembly import load_pipeline
    from tlgan.pipeline.locality import learn_masks

    if faces < 1:
        raise ValueError(f"faces: must be >= 1, got {faces}")
    pipeline = load_pipeline(generator=generator, extractor=extractor, bundle=bundle,
                             device=device, encoder="none")
    learned, meta = learn_masks(pipeline, faces=faces, progress=True)
    new = attach_masks(bundle, learned, meta)
    glob = [n for n, a in meta["axes"].items() if "global" in a]
    click.echo(f"shipped {count(len(learned), 'local mask')} in {bundle}/masks.npz (global: "
               f"{', '.join(glob) or 'none'}; bundle id {new.id})")


@axes.command()
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Axis-bundle folder (rewritten atomically).")
@click.option("--judge", required=True,
              help="Extractor (registered name or weights folder) that did NOT label the "
                   "bundle's samples.")
@click.option("--faces", type=int, default=100, show_default=True)
@click.option("--distance", type=float, default=3.0, show_default=True)
@generator_option
@device_option
@threads_option
def judge(bundle: Path, judge: str, faces: int, distance: float, generator: str | None,
          device: str) -> None:
    """Record how far each axis drags each reference, judged by another extractor.

    FACES faces move from -DISTANCE to +DISTANCE along each axis; the judge's mean change
    of P(reference) is stored per axis (judge_drag_<reference>), served by GET /axes and
    shown by the web page and the axes report.

    \b
    Examples:
      tlgan axes judge --bundle runs/bundle --judge runs/judge-extractor
    """
    from tlgan.assembly import load_pipeline
    from tlgan.axis_work.workflow import judge_bundle

    pipeline = load_pipeline(generator=generator, extractor=judge, bundle="none",
                             device=device)
    new = judge_bundle(bundle, pipeline, faces=faces, distance=distance)
    worst = max(((abs(float(v)), n, k[len("judge_drag_"):]) for n, st in
                 zip(new.names, new.stats, strict=True) for k, v in st.items()
                 if k.startswith("judge_drag_")), default=None)
    click.echo(f"judged {count(len(new.names), 'axis', 'axes')} of {bundle} (id {new.id})"
               + (f"; largest drag: {worst[1]} on {worst[2]} {worst[0]:.2f}" if worst else ""))


@axes.command()
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), default=None,
              show_default="the generator's shipped bundle", help="Axis-bundle folder.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Report folder (PNGs + summary.md).")
@click.option("--axes", "axis_names", default=None, show_default="all",
              help="Comma-separated axes to report.")
@click.option("--faces", type=int, default=6, show_default=True, help="Faces per edit strip.")
@click.option("--curve-faces", type=int, default=48, show_default=True,
              help="Faces averaged per response curve.")
@click.option("--max-step", type=float, default=3.0, show_default=True)
@click.option("--samples", type=click.Path(file_okay=False, path_type=Path), default=None,
              show_default="the bundle's samples.npz, if shipped",
              help="Sample cache for the latent map.")
@click.option("--map-attribute", default=None, show_default="the first reference",
              help="Attribute whose probability colours the latent map.")
@click.option("--discover-k", type=click.IntRange(0, 20), default=8, show_default=True,
              help="Unsupervised directions shown per method (0: none).")
@generator_option
@extractor_option
@device_option
@threads_option
def report(bundle: Path | None, out: Path, axis_names: str | None, faces: int, curve_faces: int,
           max_step: float, samples: Path | None, map_attribute: str | None, discover_k: int,
           generator: str | None, extractor: str | None, device: str) -> None:
    """Render edit strips, response curves and cosine heatmaps, plus summary.md.

    \b
    Examples:
      tlgan axes report --out runs/report
      tlgan axes report --bundle runs/bundle --out runs/report --axes Smiling,Eyeglasses
      tlgan axes report --out runs/report --samples runs/samples --map-attribute Smiling
    """
    from tlgan.assembly import load_pipeline
    from tlgan.axis_work.axis_report import axis_report

    if faces < 1 or curve_faces < 1 or max_step <= 0:
        raise ValueError("faces/curve-faces/max-step: must be positive")
    pipeline = load_pipeline(generator=generator, extractor=extractor, bundle=bundle,
                             device=device)
    assert pipeline.bundle is not None  # load_pipeline loads one unless told "none"
    names = [a.strip() for a in axis_names.split(",")] if axis_names else None
    summary = axis_report(pipeline, pipeline.bundle, out, faces=faces, curve_faces=curve_faces,
                          max_step=max_step, axes=names)
    if discover_k:
        from tlgan.axis_work.discovery_report import discovery_report, shipped_bundle_dir

        extra = discovery_report(pipeline, out, samples=samples,
                                 bundle_dir=bundle or shipped_bundle_dir(pipeline),
                                 attribute=map_attribute, k=discover_k)
        with open(out / "summary.md", "a", encoding="utf-8") as fh:
            fh.write("\n".join(extra))
    click.echo(f"wrote report for {count(len(summary['axes']), 'axis', 'axes')} to "
               f"{out}/summary.md")


def _register() -> None:
    """Add the subcommands that live in their own modules."""
    from tlgan.cli.discover import discover

    axes.add_command(discover)


_register()
