"""Choose the default number of ranked candidates (``quality="ranked"``) on evidence, and judge
the realism critic: for K = 1 (raw), 2, 4, 8 and refined sampling (``r<R>``: radius R)
the 64-face grid of seeds 1-64 (to count broken
faces by eye), the Fréchet distance in extractor space of 2,000 faces against the subset's
test faces beside the real-vs-real floor, the critic's score distribution, the time of one
/generate face (median of several requests, K=1 measured in the same run as the baseline);
and the critic's ROC-AUC on the by-eye labels of bench/data/broken_faces.json.

    python bench/quality.py --data ../shared/data/celeba-subset --out runs/quality
    python bench/quality.py --data D --sections auc,grids --ks 1,4
    python bench/quality.py --data D --sections grids,frechet,timing --ks 1,r4,r6
    python bench/quality.py --data D --critic runs/critic   # a critic not yet registered
    python bench/quality.py --data D --critic celeba-dcgan64-critic --sections validation

Each section is one function ``section_<name>(ctx)`` returning rows for its table (more can
be added to ``SECTIONS``); ``--sections`` picks some. Everything is written to
``OUT/quality.json`` and the grids to ``OUT/grid-k<K>.png``. Run it with one torch thread
(``OMP_NUM_THREADS=1``) on a quiet machine for timings comparable with docs/models.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# `python bench/x.py` puts bench/ first on sys.path, where axes.py and api.py would shadow our
# packages: replace it with the repository root and import the helpers as bench.common.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

import numpy as np  # noqa: E402

from bench.common import print_table  # noqa: E402

LABELS = REPO / "bench" / "data" / "broken_faces.json"
GRID_SEEDS = range(1, 65)
#: the faces of the Fréchet distance and the score distribution: seeds far from the grid's
FD_SEED_BASE = 100_000


@dataclass
class Context:
    """What the sections share: the arguments, the models (loaded once) and the results."""

    args: argparse.Namespace
    pipeline: Any
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def ks(self) -> list[str]:
        """The samplings measured: K (1: raw, else ranked) or ``r<R>`` (refined, radius R)."""
        return self.args.ks.split(",")

    def latents(self, seeds: range | list[int], k: str) -> Any:
        """The pipeline's seeded latents at K (1: raw) or refined (``r<R>``: radius R)."""
        from tlgan.pipeline.ranking import SeededLatents, refine_latents

        if k.startswith("r"):
            pipe = self.pipeline
            raw = pipe.seeded_latents(seeds, self.args.truncation, "raw").latents
            z, scores = refine_latents(pipe.critic, pipe.models, raw, pipe.bundle_axes(),
                                       radius=float(k[1:]))
            return SeededLatents(z, "refined", 1, realism=scores)
        if int(k) == 1:
            return self.pipeline.seeded_latents(seeds, self.args.truncation, "raw")
        return self.pipeline.seeded_latents(seeds, self.args.truncation, "ranked", int(k))


def section_auc(ctx: Context) -> tuple[list[str], list[list[object]]]:
    """The critic's ROC-AUC at telling fine faces (higher score) from broken ones, on the
    by-eye labels of bench/data/broken_faces.json (raw faces of their seeds)."""
    from tlgan_base.classifier_metrics import roc_auc

    labels = json.loads(LABELS.read_text(encoding="utf-8"))
    pipe = ctx.pipeline
    if labels.get("generator_sha256", pipe.generator.sha256) != pipe.generator.sha256:
        raise SystemExit(f"{LABELS} labels another generator's faces")
    seeds = sorted(int(s) for s in labels["seeds"])
    broken = np.array([bool(labels["seeds"][str(s)]) for s in seeds])
    z = pipe.generator.sample_latents(seeds, float(labels.get("truncation", 1.0)))
    scores = pipe.critic.score_latents(z)
    auc = roc_auc(~broken, scores)
    ctx.results["auc"] = {"auc": auc, "faces": len(seeds), "broken": int(broken.sum()),
                          "critic": pipe.critic.name, "critic_sha256": pipe.critic.sha256,
                          "mean_score_broken": float(scores[broken].mean()),
                          "mean_score_fine": float(scores[~broken].mean())}
    return (["faces", "broken", "ROC-AUC (fine above broken)", "mean score fine",
             "mean score broken"],
            [[len(seeds), int(broken.sum()), f"{auc:.3f}", f"{scores[~broken].mean():.2f}",
              f"{scores[broken].mean():.2f}"]])


def section_validation(ctx: Context) -> tuple[list[str], list[list[object]]]:
    """The critic's label-free figures on partition 1: ROC-AUC of real crops against the
    generator's faces of the validation seeds, and against the same crops broken on purpose
    (warped or melted, tlgan.critic.breakage)."""
    from tlgan.critic.critic_training import VAL_SEED_BASE, broken_faces, validation_fakes
    from tlgan.training.data import load_partitions
    from tlgan_base.classifier_metrics import roc_auc

    pipe = ctx.pipeline
    if not hasattr(pipe.critic, "score"):
        raise SystemExit("validation: needs a critic of images (--critic celeba-dcgan64-critic)")
    real = load_partitions(ctx.args.data, pipe.resolution, max_train=1, n_val=1024,
                           seed=0).val
    fakes = validation_fakes(pipe.generator, len(real))
    broken = broken_faces(real, VAL_SEED_BASE, pipe.generator.device)
    s_real, s_fake, s_broken = (pipe.critic.score(x) for x in (real, fakes, broken))
    ones, zeros = np.ones(len(real)), np.zeros(len(real))
    auc_fake = roc_auc(np.concatenate([ones, zeros]), np.concatenate([s_real, s_fake]))
    auc_broken = roc_auc(np.concatenate([ones, zeros]), np.concatenate([s_real, s_broken]))
    ctx.results["validation"] = {"auc_real_vs_generated": auc_fake,
                                 "auc_real_vs_broken_real": auc_broken, "n": len(real)}
    return (["crops", "AUC real vs generated", "AUC real vs broken real"],
            [[len(real), f"{auc_fake:.3f}", f"{auc_broken:.3f}"]])


def section_grids(ctx: Context) -> tuple[list[str], list[list[object]]]:
    """The 64-face grid of seeds 1-64 per K (8 x 8, seed 1 top left, row by row), and
    which seeds changed face against K=1 (the faces to recount by eye)."""
    from PIL import Image

    from tlgan.training.export import image_grid

    rows: list[list[object]] = []
    ctx.args.out.mkdir(parents=True, exist_ok=True)
    for k in ctx.ks:
        picked = ctx.latents(GRID_SEEDS, k)
        path = ctx.args.out / f"grid-k{k}.png"
        Image.fromarray(image_grid(ctx.pipeline.render(picked.latents), nrow=8)).save(path)
        if picked.quality == "refined":  # every face moves a little: count the ones that did
            raw = ctx.latents(GRID_SEEDS, "1").latents
            changed = [s for s, a, b in zip(GRID_SEEDS, raw, picked.latents, strict=True)
                       if not np.array_equal(a, b)]
        else:
            changed = [] if picked.chosen is None else \
                [s for s, c in zip(GRID_SEEDS, picked.chosen.tolist(), strict=True) if c != 0]
        ctx.results.setdefault("grids", {})[k] = {"path": str(path), "changed": changed}
        rows.append([k, len(changed), str(path)])
    return ["K", "faces changed vs K=1", "grid"], rows


def section_frechet(ctx: Context) -> tuple[list[str], list[list[object]]]:
    """Fréchet distance (extractor embeddings) of ``--n`` faces per K against the subset's
    test faces, beside the real-vs-real floor; and the critic's scores of those faces."""
    from tlgan.training.data import load_image_set
    from tlgan.training.frechet import Reference, embed_uint8, load_metric_extractor

    pipe = ctx.pipeline
    ext = load_metric_extractor(None, "cpu")
    images = load_image_set(ctx.args.data, pipe.resolution)
    ref = Reference(ext, images.train, images.test, ctx.args.n, "cpu", seed=0)
    seeds = range(FD_SEED_BASE, FD_SEED_BASE + ctx.args.n)
    rows: list[list[object]] = []
    for k in ctx.ks:
        z = ctx.latents(seeds, k).latents
        fd = ref.score(embed_uint8(ext, pipe.render(z), "cpu"))
        scores = pipe.critic.score_latents(z, pipe.latent_space)
        pct = np.percentile(scores, [5, 25, 50, 75, 95])
        ctx.results.setdefault("frechet", {})[k] = {
            "fd": fd, "floor": ref.floor, "n": ctx.args.n, "reference": ref.reference,
            "score_percentiles": dict(zip(["p5", "p25", "p50", "p75", "p95"],
                                          pct.tolist(), strict=True))}
        rows.append([k, f"{fd:.2f}", f"{ref.floor:.2f}" if ref.floor is not None else "-",
                     *(f"{p:.2f}" for p in pct)])
        print(f"K={k}: FD {fd:.2f}", file=sys.stderr, flush=True)
    return ["K", "FD", "floor", "score p5", "p25", "p50", "p75", "p95"], rows


def section_timing(ctx: Context) -> tuple[list[str], list[list[object]]]:
    """Time of one POST /generate face (count 1, JSON, labelled) in-process, median of
    ``--repeats`` requests of distinct seeds after a warm-up, K=1 (raw) first as baseline."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    rows: list[list[object]] = []
    app = create_app(Settings(), pipeline=ctx.pipeline)
    with TestClient(app) as client:
        base = None
        for k in ctx.ks:
            # refined is timed at the service's radius (the steps, not the radius, cost)
            body: dict[str, Any] = ({"quality": "refined"} if k.startswith("r") else
                                    {"quality": "raw"} if k == "1" else
                                    {"quality": "ranked", "candidates": int(k)})
            times = []
            for i in range(ctx.args.repeats + 2):
                t0 = time.perf_counter()
                r = client.post("/generate", json={"seed": 500 + i, **body})
                took = time.perf_counter() - t0
                assert r.status_code == 200, r.text
                if i >= 2:  # two warm-ups
                    times.append(took)
            p50 = statistics.median(times) * 1000
            base = p50 if k == "1" else base
            ratio = p50 / base if base else float("nan")
            ctx.results.setdefault("timing", {})[k] = {"p50_ms": p50, "ratio": ratio,
                                                           "repeats": ctx.args.repeats}
            rows.append([k, f"{p50:.1f}", f"{ratio:.2f}"])
    return ["K", "one /generate face p50 (ms)", "x raw"], rows


#: the sections, in the order they run (``--sections`` picks some by name)
SECTIONS: dict[str, Callable[[Context], tuple[list[str], list[list[object]]]]] = {
    "validation": section_validation,
    "auc": section_auc,
    "grids": section_grids,
    "frechet": section_frechet,
    "timing": section_timing,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="CelebA-layout folder (real faces)")
    ap.add_argument("--critic", default=None,
                    help="critic: registered name or weights folder (default: registered)")
    ap.add_argument("--ks", default="1,2,4,8,r4",
                    help="candidates per seed (1: raw), or r<R>: refined with radius R")
    ap.add_argument("--n", type=int, default=2000, help="faces per FD estimate")
    ap.add_argument("--truncation", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=15, help="requests per timing")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--out", type=Path, default=Path("runs/quality"))
    args = ap.parse_args()

    from tlgan.assembly import load_pipeline

    pipeline = load_pipeline(critic=args.critic)
    if pipeline.critic is None:
        raise SystemExit("no critic is registered for the default generator: pass --critic")
    pipeline.pass_faces = 256
    ctx = Context(args, pipeline)
    ctx.results["critic"] = pipeline.critic.describe()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.sections.split(","):
        headers, rows = SECTIONS[name](ctx)
        print(f"\n## {name}")
        print_table(headers, rows)
        (args.out / "quality.json").write_text(json.dumps(ctx.results, indent=2))


if __name__ == "__main__":
    main()
