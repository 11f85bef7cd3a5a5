"""Latent vectors: seeded sampling, truncation, interpolation and (de)serialization.

Reproducibility: the latent of seed ``s`` is
``numpy.random.Generator(numpy.random.PCG64(s)).standard_normal(L)`` (float64, then cast to
float32), times the truncation ``psi``. PCG64 and NumPy's ziggurat normal sampler are defined
bit for bit in software, so the same seed gives the same z on every machine and OS with a
NumPy of the same major version (NumPy's stream-compatibility policy), independent of torch,
the device and how many faces are sampled together: face ``i`` of a request with seed ``s``
is seed ``s + i``.

Latent spaces (:class:`LatentSpace`): a generator declares the space(s) its latents live in.
The default is the standard normal ``z`` above, whose outputs are exactly as described. A
space with a declared Gaussian prior (``mean``, ``cov``; e.g. an autoencoder's decoder) maps
the same standard-normal draw ``eps`` of a seed to ``mean + psi * chol(cov) @ eps``, so
truncation pulls toward the prior mean and interpolation turns around it. A space named
``w`` (a mapping network's output) records its mean for truncation and interpolation; its
seeded latents are the mapped z latents (see ``tlgan.generators.base.FaceGenerator``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

MAX_SEED = 2**63 - 1
#: the truncation psi that /generate, ``tlgan generate`` and the web page use unless told
#: otherwise, chosen on evidence (docs/models.md "Truncation": Fréchet distance and broken faces
#: per psi, ``bench/truncation.py``)
DEFAULT_TRUNCATION = 1.0


def check_truncation(psi: float, name: str = "truncation") -> float:
    """Return ``psi`` as float if it lies in (0, 1], else raise ValueError naming ``name``."""
    if not isinstance(psi, (int, float)) or isinstance(psi, bool) or not math.isfinite(psi):
        raise ValueError(f"{name}: must be a number in (0, 1], got {psi!r}")
    if not 0.0 < psi <= 1.0:
        raise ValueError(f"{name}: must be in (0, 1], got {psi}")
    return float(psi)


#: the space every generator has: the generator's input
DEFAULT_SPACE = "z"


def _check_space_name(name: object) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name: a latent space name must be an identifier like 'z' or 'w', "
                         f"got {name!r}")
    return name


@dataclass(frozen=True, eq=False)
class LatentSpace:
    """A latent space a generator renders from, with the Gaussian prior its latents follow.

    Attributes:
        name: ``"z"`` (the generator's input, every generator has it) or another identifier,
            e.g. ``"w"`` for a mapping network's output.
        size: the latent length L.
        mean: ``(L,)`` prior mean (None: zeros). Truncation and slerp centre on it.
        cov: ``(L, L)`` symmetric positive-definite prior covariance (None: identity).
            Seeded latents are ``mean + chol(cov) @ eps``, ``eps`` standard normal.

    The arrays are stored as read-only float64 copies; ``chol`` is the lower Cholesky factor.
    """

    name: str
    size: int
    mean: np.ndarray | None = None
    cov: np.ndarray | None = None
    chol: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_space_name(self.name)
        if (not isinstance(self.size, (int, np.integer)) or isinstance(self.size, bool)
                or self.size < 1):
            raise ValueError(f"size: must be an integer >= 1, got {self.size!r}")
        object.__setattr__(self, "size", int(self.size))
        if self.mean is not None:
            object.__setattr__(self, "mean", check_prior_mean(self.mean, self.size))
        if self.cov is not None:
            cov = check_prior_cov(self.cov, self.size)
            object.__setattr__(self, "cov", cov)
            chol = np.linalg.cholesky(cov)
            chol.setflags(write=False)
            object.__setattr__(self, "chol", chol)

    @property
    def is_standard(self) -> bool:
        """True for the standard normal prior (no mean, no covariance declared)."""
        return self.mean is None and self.cov is None

    @property
    def center(self) -> np.ndarray:
        """The prior mean as a (size,) float64 array (zeros when none is declared)."""
        return self.mean if self.mean is not None else np.zeros(self.size)

    def describe(self) -> dict[str, object]:
        """A JSON-friendly summary (name, size, which prior)."""
        prior = ("standard normal" if self.is_standard else
                 "gaussian" if self.cov is not None else "shifted normal")
        return {"name": self.name, "size": self.size, "prior": prior}


def check_prior_mean(mean: object, size: int) -> np.ndarray:
    """A (size,) finite prior mean as a read-only float64 copy, else ValueError naming
    ``mean``."""
    arr = np.array(mean, dtype=np.float64)
    if arr.shape != (size,):
        raise ValueError(f"mean: expected shape ({size},), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("mean: contains NaN or infinity")
    arr.setflags(write=False)
    return arr


def check_prior_cov(cov: object, size: int) -> np.ndarray:
    """A (size, size) symmetric positive-definite covariance as a read-only float64 copy,
    else ValueError naming ``cov``."""
    arr = np.array(cov, dtype=np.float64)
    if arr.shape != (size, size):
        raise ValueError(f"cov: expected shape ({size}, {size}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("cov: contains NaN or infinity")
    if not np.allclose(arr, arr.T, rtol=1e-6, atol=1e-9):
        raise ValueError("cov: must be symmetric")
    try:
        np.linalg.cholesky(arr)
    except np.linalg.LinAlgError:
        raise ValueError("cov: must be positive definite") from None
    arr.setflags(write=False)
    return arr


SpaceLike = int | LatentSpace


def as_space(space: SpaceLike, name: str = "latent_size") -> LatentSpace:
    """A :class:`LatentSpace` for ``space``: a latent size means the standard normal ``z``."""
    if isinstance(space, LatentSpace):
        return space
    if not isinstance(space, (int, np.integer)) or isinstance(space, bool) or space < 1:
        raise ValueError(f"{name}: must be >= 1, got {space}")
    return LatentSpace(DEFAULT_SPACE, int(space))


def _check_seed(seed: object) -> int:
    if (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)
            or not 0 <= seed <= MAX_SEED):
        raise ValueError(f"seed: must be an integer in [0, {MAX_SEED}], got {seed!r}")
    return int(seed)


def from_prior(eps: np.ndarray, space: LatentSpace, psi: float = 1.0) -> np.ndarray:
    """Standard-normal draws ``eps`` (..., L) -> latents of ``space``'s prior, truncated by
    ``psi``: ``eps * psi`` for the standard normal (bit for bit the historical recipe), else
    ``mean + psi * chol(cov) @ eps``. Returns float32."""
    eps = np.asarray(eps, dtype=np.float64)
    if eps.shape[-1:] != (space.size,):
        raise ValueError(f"eps: expected last dimension {space.size}, got shape {eps.shape}")
    if space.is_standard:
        return (eps * psi).astype(np.float32)
    x = eps @ space.chol.T if space.chol is not None else eps
    return (space.center + psi * x).astype(np.float32)


def truncate(latents: np.ndarray, psi: float, space: SpaceLike) -> np.ndarray:
    """Pull latents (..., L) toward the prior mean: ``mean + psi * (latents - mean)``.

    ``psi`` in [0, 1]: 0 gives the mean, 1 the latents unchanged. Returns float32.
    """
    sp = as_space(space, "space")
    if not isinstance(psi, (int, float)) or isinstance(psi, bool) or not 0.0 <= psi <= 1.0:
        raise ValueError(f"psi: must be a number in [0, 1], got {psi!r}")
    x = np.asarray(latents, dtype=np.float64)
    if x.shape[-1:] != (sp.size,):
        raise ValueError(f"latents: expected last dimension {sp.size}, got shape {x.shape}")
    if psi == 1.0:
        return np.asarray(latents, dtype=np.float32).copy()
    return (sp.center + psi * (x - sp.center)).astype(np.float32)


def sample_latent(seed: int, latent_size: SpaceLike, truncation: float = 1.0) -> np.ndarray:
    """The latent of one seed: a (L,) float32 vector (see module docstring).

    ``latent_size`` is L (standard normal z) or a :class:`LatentSpace` whose prior to
    follow; the seed's standard-normal draw is the same either way.
    """
    seed = _check_seed(seed)
    space = as_space(latent_size)
    psi = check_truncation(truncation)
    rng = np.random.Generator(np.random.PCG64(seed))
    return from_prior(rng.standard_normal(space.size), space, psi)


def sample_latents(seeds: Iterable[int], latent_size: SpaceLike,
                   truncation: float = 1.0) -> np.ndarray:
    """Latents for several seeds: (len(seeds), L) float32 (``latent_size``: L or a
    :class:`LatentSpace`)."""
    space = as_space(latent_size)
    rows = [sample_latent(s, space, truncation) for s in seeds]
    if not rows:
        return np.zeros((0, space.size), dtype=np.float32)
    return np.stack(rows)


def candidate_latents(seed: int, count: int, latent_size: SpaceLike,
                      truncation: float = 1.0) -> np.ndarray:
    """``count`` alternative starting latents for one seed: (count, L) float32.

    Candidate 0 is the seed's own latent; candidate k >= 1 comes from a separate stream
    (``SeedSequence([seed, k])``), so no candidate repeats another seed's face. Used by
    feature-conditioned generation to start from the candidate nearest the targets.
    ``latent_size``: L (standard normal) or a :class:`LatentSpace`.
    """
    if count < 1:
        raise ValueError(f"count: must be >= 1, got {count}")
    space = as_space(latent_size)
    first = sample_latent(seed, space, truncation)
    rows = [first]
    for k in range(1, count):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), k])))
        rows.append(from_prior(rng.standard_normal(space.size), space, truncation))
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


def slerp_prior(a: np.ndarray, b: np.ndarray, t: float, space: SpaceLike) -> np.ndarray:
    """Spherical interpolation around ``space``'s prior: in whitened coordinates
    ``chol^-1 (x - mean)``, mapped back. Equals :func:`slerp` for the standard normal;
    endpoints are returned exactly."""
    sp = as_space(space, "space")
    _check_pair(a, b)
    if a.shape != (sp.size,):
        raise ValueError(f"latent_a: expected shape ({sp.size},), got {a.shape}")
    t = _check_t(t)
    if sp.is_standard or t in (0.0, 1.0):
        return slerp(a, b, t)
    c = sp.center
    a64, b64 = a.astype(np.float64) - c, b.astype(np.float64) - c
    if sp.chol is not None:
        a64, b64 = np.linalg.solve(sp.chol, a64), np.linalg.solve(sp.chol, b64)
    mid = slerp(a64, b64, t)
    if sp.chol is not None:
        mid = sp.chol @ mid
    return (mid + c).astype(a.dtype)


def interpolate(a: np.ndarray, b: np.ndarray, ratios: Sequence[float],
                method: str = "slerp", space: SpaceLike | None = None) -> np.ndarray:
    """Latents at each ratio between a and b: (len(ratios), L). ``space`` (a
    :class:`LatentSpace`; None: standard normal): slerp turns around its prior mean."""
    if method not in ("slerp", "lerp"):
        raise ValueError(f"method: must be 'slerp' or 'lerp', got {method!r}")
    if method == "lerp":
        return np.stack([lerp(a, b, t) for t in ratios])
    if space is None:
        return np.stack([slerp(a, b, t) for t in ratios])
    return np.stack([slerp_prior(a, b, t, space) for t in ratios])


def steps_ratios(steps: int) -> list[float]:
    """``steps`` evenly spaced ratios from 0 to 1 inclusive (steps >= 2)."""
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps: must be an integer >= 2, got {steps!r}")
    return [i / (steps - 1) for i in range(steps)]
