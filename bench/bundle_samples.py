"""How many cached samples must a bundle ship so that new axes fit as well as on the full cache?

For each subset size N (the cache's first N rows, stored as float16 like ``samples.npz``)
and each of several attributes treated as new, the axis is refitted on the subset the way
``tlgan axes add`` fits one (GLM on z, conditional on the references' logits) and compared
with the same fit on the whole cache: cosine of the raw axes, GLM time, and the size of
the compressed ``samples.npz`` that N samples take.

    python -m bench.bundle_samples --cache runs/celeba-samples-120k
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np

from axes.fitting import fit_one, reference_covariates
from axes.samples import load_samples
from bench.common import print_table

ATTRIBUTES = ("Smiling", "Eyeglasses", "Bangs", "Wearing_Hat", "Mustache", "Blond_Hair",
              "Pale_Skin", "Bald")


def npz_size(z: np.ndarray, emb: np.ndarray, probs: np.ndarray) -> int:
    buf = io.BytesIO()
    np.savez_compressed(buf, z=z.astype(np.float16), embeddings=emb.astype(np.float16),
                        probs=probs.astype(np.float16))
    return len(buf.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--sizes", default="2000,5000,10000,20000,50000")
    ap.add_argument("--references", default="Male,Young")
    args = ap.parse_args()
    cache = load_samples(args.cache, mmap=True)
    refs = [r for r in args.references.split(",") if r]
    attrs = [a for a in ATTRIBUTES if a in cache.attributes] or [
        a for a in cache.attributes if a not in refs][:6]
    ref_cols = [cache.attributes.index(r) for r in refs if r in cache.attributes]
    z_full = np.asarray(cache.z, dtype=np.float64)
    p_full = np.asarray(cache.probs, dtype=np.float64)
    cov_full = reference_covariates(p_full[:, ref_cols]) if ref_cols else None
    full = {a: fit_one(z_full, p_full[:, cache.attributes.index(a)], name=a,
                       covariates=cov_full)[0] for a in attrs}
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        z = np.asarray(cache.z[:n], dtype=np.float16).astype(np.float64)
        p = np.asarray(cache.probs[:n], dtype=np.float16).astype(np.float64)
        cov = reference_covariates(np.clip(p[:, ref_cols], 0, 1)) if ref_cols else None
        cosines, times = [], []
        for a in attrs:
            t0 = time.perf_counter()
            axis, _ = fit_one(z, np.clip(p[:, cache.attributes.index(a)], 0, 1), name=a,
                              covariates=cov)
            times.append(time.perf_counter() - t0)
            cosines.append(float(axis @ full[a]))
        size = npz_size(np.asarray(cache.z[:n]), np.asarray(cache.embeddings[:n]),
                        np.asarray(cache.probs[:n]))
        rows.append([n, f"{statistics.median(cosines):.4f}", f"{min(cosines):.4f}",
                     f"{statistics.median(times):.3f}", f"{size / 2**20:.2f}"])
        print(n, dict(zip(attrs, [round(c, 4) for c in cosines], strict=True)), flush=True)
    print(f"\ncache {args.cache} (N={cache.n}); attributes refitted: {', '.join(attrs)}")
    print_table(["N", "median cos vs full", "min cos", "GLM s (median)", "samples.npz MiB"],
                rows)


if __name__ == "__main__":
    main()
