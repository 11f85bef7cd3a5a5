"""Latent vectors: seeded sampling, truncation, interpolation and (de)serialization.

Reproducibility: the latent of seed ``s`` is
``numpy.random.Generator(numpy.random.PCG64(s)).standard_normal(L)`` (float64, then cast to
float32), times the truncation ``psi``. PCG64 and NumPy's ziggurat normal sampler are defined
bit for bit in software, so the same seed gives the same z on every machine and OS with a
NumPy of the same major version (NumPy's stream-compatibility policy), independent of torch,
the device and how many faces are sampled together: face ``i`` of a request with seed ``s``
is seed ``s + i``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

MAX_SEED = 2**63 - 1
#: the truncation psi that /generate, ``tlgan generate`` and the web page use unless told
#: otherwise, chosen on evidence (README "Truncation": Fréchet distance and broken faces
#: per psi, ``bench/truncation.py``)
DEFAULT_TRUNCATION = 1.0


def check_truncation(psi: float, name: str = "truncation") -> float:
    """Return ``psi`` as float if it lies in (0, 1], else raise ValueError naming ``name``."""
    if not isinstance(psi, (int, float)) or isinstance(psi, bool) or not math.isfinite(psi):
        raise ValueError(f"{name}: must be a number in (0, 1], got {psi!r}")
    if not 0.0 < psi <= 1.0:
        raise ValueError(f"{name}: must be in (0, 1], got {psi}")
    return float(psi)


def sample_latent(seed: int, latent_size: int, truncation: float = 1.0) -> np.ndarray:
    """The latent of one seed: a (latent_size,) float32 vector (see module docstring)."""
    if (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)
            or not 0 <= seed <= MAX_SEED):
        raise ValueError(f"seed: must be an integer in [0, {MAX_SEED}], got {seed!r}")
    if latent_size < 1:
        raise ValueError(f"latent_size: must be >= 1, got {latent_size}")
    psi = check_truncation(truncation)
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    z = rng.standard_normal(latent_size)
    return (z * psi).astype(np.float32)


def sample_latents(seeds: Iterable[int], latent_size: int, truncation: float = 1.0) -> np.ndarray:
    """Latents for several seeds: (len(seeds), latent_size) float32."""
    rows = [sample_latent(s, latent_size, truncation) for s in seeds]
    if not rows:
        return np.zeros((0, latent_size), dtype=np.float32)
    return np.stack(rows)


def candidate_latents(seed: int, count: int, latent_size: int,
                      truncation: float = 1.0) -> np.ndarray:
    """``count`` alternative starting latents for one seed: (count, latent_size) float32.

    Candidate 0 is the seed's own latent; candidate k >= 1 comes from a separate stream
    (``SeedSequence([seed, k])``), so no candidate repeats another seed's face. Used by
    feature-conditioned generation to start from the candidate nearest the targets.
    """
    if count < 1:
        raise ValueError(f"count: must be >= 1, got {count}")
    first = sample_latent(seed, latent_size, truncation)
    rows = [first]
    for k in range(1, count):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), k])))
        rows.append((rng.standard_normal(latent_size) * truncation).astype(np.float32))
    return np.stack(rows)


def parse_seeds(text: str, max_count: int = 100_000) -> list[int]:
    """Parse ``"1-8"``, ``"3,5,9"`` or ``"1-4,10"`` into a list of seeds (ranges inclusive)."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise ValueError(f"seeds: empty item in {text!r}")
        try:
            if "-" in part[1:]:
                lo_s, hi_s = part.split("-", 1) if not part.startswith("-") else ("", part)
                lo, hi = int(lo_s), int(hi_s)
                if hi < lo:
                    raise ValueError(f"seeds: range {part!r} runs backwards")
                if hi - lo + 1 + len(seeds) > max_count:
                    raise ValueError(f"seeds: more than {max_count} seeds requested")
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
        except ValueError as exc:
            if str(exc).startswith("seeds:"):
                raise
            raise ValueError(f"seeds: {part!r} is not an integer or a range like 1-8") from None
    for s in seeds:
        if not 0 <= s <= MAX_SEED:
            raise ValueError(f"seeds: {s} is outside [0, {MAX_SEED}]")
    return seeds


_PLAIN_NUMBERS = frozenset((int, float))


def parse_latent(values: object, latent_size: int, name: str = "latent") -> np.ndarray:
    """Validate a latent given as a list of floats; return a (latent_size,) float32 array.

    Raises:
        ValueError: naming ``name``, for a wrong type or length, NaN or infinity.
    """
    if isinstance(values, np.ndarray):
        arr = values
    else:
        if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
            raise ValueError(f"{name}: expected a list of {latent_size} numbers")
        # Exact int/float elements (what JSON gives) pass on one set of types; anything else
        # (bool, numpy scalars, other subclasses) is checked element by element.
        if not set(map(type, values)) <= _PLAIN_NUMBERS and any(
                isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
            raise ValueError(f"{name}: every element must be a number")
        arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] != latent_size:
        raise ValueError(f"{name}: expected {latent_size} numbers, got shape {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinity")
    return arr.astype(np.float32)


def latent_to_list(z: np.ndarray) -> list[float]:
    """Serialize a latent as a list of Python floats (exact float32 round trip)."""
    out: list[float] = np.asarray(z, dtype=np.float32).ravel().tolist()
    return out


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"latent_b: shape {b.shape} does not match latent_a's {a.shape}")


def _check_t(t: float) -> float:
    if not isinstance(t, (int, float)) or not math.isfinite(t) or not 0.0 <= t <= 1.0:
        raise ValueError(f"ratio: must be in [0, 1], got {t!r}")
    return float(t)


def lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Linear interpolation; t=0 returns a and t=1 returns b exactly."""
    _check_pair(a, b)
    t = _check_t(t)
    if t == 0.0:
        return a.copy()
    if t == 1.0:
        return b.copy()
    return ((1.0 - t) * a.astype(np.float64) + t * b.astype(np.float64)).astype(a.dtype)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation (falls back to lerp for near-parallel latents).

    Endpoints are returned exactly. Norms are interpolated linearly, directions along the
    great circle, so intermediate latents keep a typical Gaussian norm.
    """
    _check_pair(a, b)
    t = _check_t(t)
    if t == 0.0:
        return a.copy()
    if t == 1.0:
        return b.copy()
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    if na == 0.0 or nb == 0.0:
        return lerp(a, b, t)
    ua, ub = a64 / na, b64 / nb
    omega = math.acos(float(np.clip(ua @ ub, -1.0, 1.0)))
    if omega < 1e-6 or math.pi - omega < 1e-6:
        return lerp(a, b, t)
    so = math.sin(omega)
    direction = (math.sin((1 - t) * omega) * ua + math.sin(t * omega) * ub) / so
    return (direction * ((1 - t) * na + t * nb)).astype(a.dtype)


def interpolate(a: np.ndarray, b: np.ndarray, ratios: Sequence[float],
                method: str = "slerp") -> np.ndarray:
    """Latents at each ratio between a and b: (len(ratios), L)."""
    if method not in ("slerp", "lerp"):
        raise ValueError(f"method: must be 'slerp' or 'lerp', got {method!r}")
    fn = slerp if method == "slerp" else lerp
    return np.stack([fn(a, b, t) for t in ratios])


def steps_ratios(steps: int) -> list[float]:
    """``steps`` evenly spaced ratios from 0 to 1 inclusive (steps >= 2)."""
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps: must be an integer >= 2, got {steps!r}")
    return [i / (steps - 1) for i in range(steps)]
