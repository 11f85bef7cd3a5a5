"""One object that ties a generator, an extractor and an axis bundle together.

The API and the CLI call this; it owns all model work. Inputs are plain Python / numpy values
and outputs are numpy arrays: tensors never leave the pipeline.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from axes.bundle import AxisBundle
from axes.heads import Head
from axes.maths import apply_moves
from axes.samples import SampleCache
from feature_extractor.model import Extractor
from tlgan.encoders import DEFAULT_STARTS
from tlgan.generators.base import FaceGenerator, to_uint8
from tlgan.latents import DEFAULT_SPACE, LatentSpace, interpolate
from tlgan.locality import blend_mask, render_local, supports_locality
from tlgan_base.errors import Stopped, clip, shown

__all__ = ["EncodeResult", "Pipeline", "Stopped", "condition_cost", "hold_cost"]

if TYPE_CHECKING:
    from tlgan.encoders.photo import PhotoEncoder


@dataclass
class ConditionResult:
    """Outcome of feature-conditioned generation for a batch of faces."""

    latents: np.ndarray
    images: np.ndarray
    probs: np.ndarray
    unmet: list[list[str]]
    steps: int


@dataclass
class EncodeResult:
    """Photos encoded: latents (N, L) of the pipeline's space, the faces they render
    (uint8 (N, H, W, 3)), their labels (N, A) or None, and each reconstruction's quality
    (``psnr`` in dB at the generator's resolution; with an extractor also
    ``embedding_cosine`` and ``label_agreement``, photo vs reconstruction)."""

    latents: np.ndarray
    images: np.ndarray
    probs: np.ndarray | None
    quality: list[dict[str, float]]
    steps: int


@dataclass
class HoldResult:
    """Outcome of closed-loop locks for a batch of moved faces."""

    latents: np.ndarray
    images: np.ndarray
    probs: np.ndarray
    unheld: list[list[str]]
    steps: int


#: closed-loop locks: a locked attribute is held when |p - p_before| <= this
LOCK_TOLERANCE = 0.05
#: closed-loop locks: most correction passes (each one render + label of the batch)
LOCK_MAX_STEPS = 4
#: most axes of a request's own (``custom_axes``)
MAX_CUSTOM_AXES = 32
#: feature-conditioned generation: candidate starts per face and most correction steps
CONDITION_CANDIDATES = 16
CONDITION_MAX_STEPS = 12


def condition_cost(faces: int) -> int:
    """The most face-passes (render + label of one face) conditioned generation of
    ``faces`` faces may take: the candidates, the start and every step."""
    return faces * (CONDITION_CANDIDATES + 1 + CONDITION_MAX_STEPS)


def hold_cost(faces: int) -> int:
    """The most face-passes closed-loop locks on ``faces`` faces may take."""
    return faces * (2 + LOCK_MAX_STEPS)


@dataclass
class Pipeline:
    """Generator + extractor + axes.

    Args:
        generator: renders latents.
        extractor: labels faces with attribute probabilities (None: no labelling).
        bundle: the feature axes (None: no editing).
        calibration: logit change per unit step, per axis name (used to size the steps of
            feature-conditioned generation); missing axes default to 1.0.
        encoder: the photo encoder trained for this generator (None: no photo encoding).
        pass_faces: the most faces the extractor labels or embeds in one forward pass (more
            are done in chunks, with the same results), so that work labelling many faces at
            once (conditioned starts, taught examples) holds a bounded amount of memory.

    Latents in and out live in the bundle's latent space (``bundle.latent_space``, "z"
    without a bundle): seeds map to it, edits move in it and faces render from it.
    """

    generator: FaceGenerator
    extractor: Extractor | None = None
    bundle: AxisBundle | None = None
    calibration: dict[str, float] = field(default_factory=dict)
    samples: SampleCache | None = None
    encoder: PhotoEncoder | None = None
    pass_faces: int = 64

    def __post_init__(self) -> None:
        if self.pass_faces < 1:
            raise ValueError(f"pass_faces: must be >= 1, got {self.pass_faces}")
        self._space_name = DEFAULT_SPACE
        self._heads: list[tuple[str, Head]] = []
        self._axis_index: dict[str, int] = {}  # none without a bundle
        self._custom_rows: dict[int, float] = {}  # a request's own axes: row -> logit slope
        self._axes = np.zeros((0, self.generator.latent_size), np.float32)
        self._samples_lock = threading.Lock()
        if self.bundle is not None:
            name = self.bundle.latent_space
            if name not in self.generator.space_names:
                raise ValueError(
                    f"bundle: axes live in latent space {name!r}, generator "
                    f"{self.generator.name!r} has no such space (it has: "
                    f"{', '.join(self.generator.space_names)})")
            self._space_name = name
            size = self.generator.space_sizes()[name]
            dirs = np.asarray(self.bundle.directions)
            if dirs.ndim != 2 or dirs.shape[1] != size:
                raise ValueError(
                    f"bundle: axes have latent size {dirs.shape[-1]}, generator "
                    f"{self.generator.name!r} has {size}"
                )
            self._axes = dirs.astype(np.float32)
            self._axis_index = {n: i for i, n in enumerate(self.bundle.names)}
            cal = self.bundle.calibration
            if not self.calibration:
                self.calibration = {n: float(c) for n, c in zip(self.bundle.names, cal, strict=True)
                                    if np.isfinite(c) and c > 0}
            if self.extractor is not None:
                self._heads = _bundle_heads(self.bundle, self.extractor)
        self._masks: dict[str, np.ndarray] = {}
        self._no_locality = self._load_masks()

    def _load_masks(self) -> str | None:
        """Load the bundle's local-edit masks; return why local edits are unavailable (None
        when they are available)."""
        if self.bundle is None or not self.bundle.has_masks:
            return "the axis bundle ships no local-edit masks (`tlgan axes masks` learns them)"
        if not supports_locality(self.generator, self._space_name):
            return (f"generator {self.generator.name!r} does not support local edits (DCGAN "
                    "generators, latents in z)")
        meta = self.bundle.masks_meta or {}
        if (meta.get("generator_sha256") != self.generator.sha256
                or meta.get("resolution") != self.generator.resolution):
            return (f"the bundle's local-edit masks were learned for generator "
                    f"{meta.get('generator')!r} ({str(meta.get('generator_sha256'))[:12]}), "
                    f"not {self.generator.name!r} ({self.generator.sha256[:12]})")
        self._masks = self.bundle.load_masks()
        return None

    # -- properties --------------------------------------------------------------------
    @property
    def latent_space(self) -> str:
        """The name of the latent space latents in and out live in (the bundle's)."""
        return self._space_name

    @property
    def space(self) -> LatentSpace:
        """The :class:`LatentSpace` latents in and out live in."""
        return self.generator.space(self._space_name)

    @property
    def latent_size(self) -> int:
        if self._space_name == DEFAULT_SPACE:
            return self.generator.latent_size
        return self.generator.space_sizes()[self._space_name]

    @property
    def resolution(self) -> int:
        return self.generator.resolution

    @property
    def attributes(self) -> list[str]:
        """The attributes faces are labelled with: the extractor's, then the bundle axes
        that carry a head (a classifier on the extractor's embeddings, e.g. added with
        ``tlgan axes add/teach/import``)."""
        if self.extractor is None:
            return []
        return [*self.extractor.attributes, *(n for n, _ in self._heads)]

    @property
    def head_axes(self) -> list[str]:
        """The bundle axes labelled by their own head (extra columns of the probabilities
        after the extractor's attributes)."""
        return [n for n, _ in self._heads]

    def sample_cache(self) -> SampleCache:
        """The samples new axes are fitted on: ``samples`` when given, else the compact
        subset the bundle ships (loaded once). ValueError naming ``samples`` when none."""
        with self._samples_lock:
            if self.samples is None:
                if self.bundle is None or not self.bundle.has_samples:
                    raise ValueError("samples: the loaded axis bundle ships no sample subset "
                                     "(samples.npz) to fit new axes on")
                self.samples = self.bundle.load_samples()
            return self.samples

    @property
    def axis_names(self) -> list[str]:
        return list(self.bundle.names) if self.bundle is not None else []

    @property
    def bundle_id(self) -> str | None:
        return self.bundle.id if self.bundle is not None else None

    # -- rendering ---------------------------------------------------------------------
    def seeds_to_latents(self, seeds: Sequence[int], truncation: float = 1.0) -> np.ndarray:
        """Seeded latents (see tlgan.latents for the reproducibility contract), in the
        pipeline's latent space."""
        return self.generator.sample_latents(seeds, truncation, self._space_name)

    def conditioned_starts(self, seeds: Sequence[int], targets: Mapping[str, float],
                           truncation: float = 1.0, candidates: int = CONDITION_CANDIDATES
                           ) -> np.ndarray:
        """Starting latents (N, L) for feature-conditioned generation: for each seed, the one
        of ``candidates`` latents (:func:`tlgan.latents.candidate_latents`; the seed's own is
        the first) whose labelled face is nearest ``targets`` (sum of |logit gaps|), so
        :meth:`condition` has less far to move it. Deterministic for the same arguments.
        """
        _, attr_idx, _, tgt = self._targets(targets)
        if candidates < 1:
            raise ValueError(f"candidates: must be >= 1, got {candidates}")
        pool = np.concatenate([self.generator.candidate_latents(s, candidates, truncation,
                                                                self._space_name)
                               for s in seeds]) if len(seeds) else np.zeros(
            (0, self.latent_size), np.float32)
        if candidates == 1 or len(pool) == 0:
            return pool
        gap = np.abs(_logit_gap(self.label_latents(pool)[:, attr_idx], tgt)).sum(axis=1)
        best = gap.reshape(len(seeds), candidates).argmin(axis=1)
        return pool.reshape(len(seeds), candidates, -1)[np.arange(len(seeds)), best]

    def _targets(self, targets: Mapping[str, float]
                 ) -> tuple[list[str], list[int], list[int], np.ndarray]:
        """Validated feature targets: names, their extractor columns, their axes and the
        target values."""
        self._require_bundle()
        if self.extractor is None:
            raise ValueError("features: this service has no feature extractor loaded")
        names = list(targets)
        attr_idx = []
        for n in names:
            t = targets[n]
            if not isinstance(t, (int, float)) or not 0.0 <= t <= 1.0:
                raise ValueError(f"features.{clip(n)}: target must be a probability in [0, 1]")
            if n not in self.attributes:
                raise ValueError(
                    f"features: unknown attribute {shown(n)}; valid: {', '.join(self.attributes)}"
                )
            attr_idx.append(self.attributes.index(n))
        axis_idx = [self.axis_index(n, "features") for n in names]
        return names, attr_idx, axis_idx, np.array([targets[n] for n in names],
                                                   dtype=np.float64)

    def render(self, z: np.ndarray) -> np.ndarray:
        """Latents (N, L) -> uint8 faces (N, H, W, 3)."""
        return self.generator.render(z, self._space_name)

    def render_and_label(self, z: np.ndarray, with_features: bool = True
                         ) -> tuple[np.ndarray, np.ndarray | None]:
        """Render latents and (optionally) label the faces in one pass on the device.

        Returns uint8 faces (N, H, W, 3) and probabilities (N, A) or None.
        """
        x = self.generator.render_tensor(z, self._space_name)
        images = to_uint8(x)
        if not with_features:
            return images, None
        return images, self._label_tensor(x)

    def _extract(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """The extractor's probabilities and embeddings (float32 arrays) of faces ``x``, at
        most ``pass_faces`` at a time."""
        assert self.extractor is not None
        probs, embs = [], []
        with torch.inference_mode():
            for start in range(0, max(1, x.shape[0]), self.pass_faces):
                p, e = self.extractor.forward_tensor(x[start:start + self.pass_faces])
                probs.append(p.float().cpu().numpy())
                embs.append(e.float().cpu().numpy())
        if len(probs) == 1:
            return probs[0], embs[0]
        return np.concatenate(probs), np.concatenate(embs)

    def _label_tensor(self, x: torch.Tensor) -> np.ndarray:
        if self.extractor is None:
            raise ValueError("with_features: this service has no feature extractor loaded")
        out, e = self._extract(x)
        heads = [head for _, head in self._heads]
        if not heads:
            return out
        extra = np.stack([head.predict_proba(e) for head in heads], axis=1)
        return np.concatenate([out, extra.astype(np.float32)], axis=1)

    def custom_heads(self, raw: Mapping[str, Mapping[str, Any]]) -> dict[str, Head]:
        """Validate a request's heads ``{axis name: head dict}`` (the form ``POST /axes/fit``
        returns) for this extractor's embeddings.

        Raises:
            ValueError: naming ``custom_axes.<name>.head``.
        """
        out: dict[str, Head] = {}
        for name, d in raw.items():
            field = f"custom_axes.{clip(name)}.head"
            if self.extractor is None:
                raise ValueError(f"{field}: this service has no feature extractor loaded")
            try:
                head = Head.from_dict(d)
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:  # int(inf)
                raise ValueError(f"{field}: {' '.join(str(exc).split())[:200]}") from None
            if not (np.isfinite(head.weights).all() and np.isfinite(head.mean).all()
                    and np.isfinite(head.std).all() and math.isfinite(head.bias)):
                raise ValueError(f"{field}: weights, bias, mean and std must be finite")
            if head.embedding_size != self.extractor.embedding_size:
                raise ValueError(f"{field}: a head for embeddings of size "
                                 f"{head.embedding_size}; the extractor's are "
                                 f"{self.extractor.embedding_size}")
            if name in self.attributes:
                raise ValueError(f"{field}: {shown(name)} is already an attribute")
            out[name] = head
        return out

    def embed_latents(self, z: np.ndarray) -> np.ndarray:
        """The extractor's embeddings (N, E) float32 of the faces rendered from latents z
        (N, L) of the pipeline's space, ``pass_faces`` at a time."""
        if self.extractor is None:
            raise ValueError("examples: this service has no feature extractor loaded")
        parts = [self._extract(self.generator.render_tensor(z[i:i + self.pass_faces],
                                                            self._space_name))[1]
                 for i in range(0, max(1, len(z)), self.pass_faces)]
        return np.asarray(np.concatenate(parts) if len(parts) > 1 else parts[0],
                          dtype=np.float32)

    def label_latents(self, z: np.ndarray, space: str | None = None) -> np.ndarray:
        """Probabilities (N, A) of the faces rendered from z (latents of ``space``; None:
        the pipeline's space), ``pass_faces`` at a time."""
        parts = [self._label_tensor(self.generator.render_tensor(z[i:i + self.pass_faces],
                                                                 space or self._space_name))
                 for i in range(0, max(1, len(z)), self.pass_faces)]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def features_dict(self, probs: np.ndarray) -> dict[str, float]:
        """One face's probabilities as {attribute: probability}."""
        return {a: float(p) for a, p in zip(self.attributes, probs, strict=True)}

    # -- editing -----------------------------------------------------------------------
    def _require_bundle(self) -> None:
        if self.bundle is None:
            raise ValueError("moves: this service has no axis bundle loaded")

    def axis_index(self, name: str, field_name: str = "moves") -> int:
        """Index of an axis, or ValueError naming the field and listing valid names."""
        if name in self._axis_index:
            return self._axis_index[name]
        self._require_bundle()
        try:
            return self._axis_index[name]
        except KeyError:
            raise ValueError(
                f"{field_name}: unknown axis {shown(name)}; valid axes: "
                f"{', '.join(self.axis_names)}"
            ) from None

    def custom_axes(self, raw: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
        """Validate a request's own axes ``{name: direction}``: at most
        :data:`MAX_CUSTOM_AXES`, each a finite, non-zero vector of the latent's length whose
        name is not one of the bundle's axes. Returns them as unit vectors (float64).

        Raises:
            ValueError: naming ``custom_axes`` or ``custom_axes.<name>``.
        """
        if len(raw) > MAX_CUSTOM_AXES:
            raise ValueError(f"custom_axes: at most {MAX_CUSTOM_AXES} per request, got "
                             f"{len(raw)}")
        out: dict[str, np.ndarray] = {}
        for name, values in raw.items():
            field = f"custom_axes.{clip(name)}"
            if not name.strip():
                raise ValueError("custom_axes: a name must not be empty")
            if name in self._axis_index:
                raise ValueError(f"{field}: the bundle has an axis of this name; choose "
                                 "another name")
            vec = np.asarray(values, dtype=np.float64)
            if vec.shape != (self.latent_size,):
                raise ValueError(f"{field}: expected {self.latent_size} numbers, got "
                                 f"{vec.size}")
            norm = float(np.linalg.norm(vec)) if np.isfinite(vec).all() else math.nan
            if not math.isfinite(norm) or norm == 0.0:
                raise ValueError(f"{field}: the direction must be finite and non-zero")
            out[name] = vec / norm
        return out

    def with_custom(self, custom: Mapping[str, np.ndarray],
                    heads: Mapping[str, Head] | None = None) -> Pipeline:
        """This pipeline plus a request's own axes (from :meth:`custom_axes`): a copy whose
        axis table ends with them, so that moves and locks may name them; one with a head
        (from :meth:`custom_heads`) is first-class like a bundle axis that carries one: a
        probability column after the attributes, a ``features`` target of conditioned
        generation and a lock held per face. Its logit slope along its direction (for step
        sizes and the locks' Newton steps) is fitted on the shipped samples when there are
        some, else taken as 1. The models are shared, not copied."""
        heads = heads or {}
        stray = [n for n in heads if n not in custom]
        if stray:
            raise ValueError(f"custom_axes.{clip(stray[0])}.head: a head needs its direction")
        if not custom:
            return self
        out = copy.copy(self)
        names = list(custom)
        first = len(self._axes)
        out._axes = np.concatenate([self._axes, np.stack(
            [np.asarray(custom[n], dtype=np.float32) for n in names])])
        out._axis_index = {**self._axis_index, **{n: first + i for i, n in enumerate(names)}}
        out._heads = [*self._heads, *((n, heads[n]) for n in names if n in heads)]
        out._custom_rows = dict(self._custom_rows)
        out.calibration = dict(self.calibration)
        for i, n in enumerate(names):
            slope = self._head_slope(heads[n], custom[n]) if n in heads else 1.0
            out._custom_rows[first + i] = slope
            out.calibration[n] = slope
        return out

    def _head_slope(self, head: Head, direction: np.ndarray) -> float:
        """A head's logit change per unit step along ``direction``: least squares over the
        shipped samples (their embeddings and latents), else 1."""
        try:
            cache = self.sample_cache()
        except ValueError:
            return 1.0
        x = np.asarray(cache.z, dtype=np.float64) @ np.asarray(direction, np.float64)
        y = head.decision_function(np.asarray(cache.embeddings, dtype=np.float64))
        var = float(np.var(x))
        slope = float(np.cov(x, y, bias=True)[0, 1] / var) if var > 0 else 0.0
        return slope if math.isfinite(slope) and abs(slope) > 1e-3 else 1.0

    def _linear_models(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """For axis rows: the raw direction of each attribute's linear model and its logit
        slope (bundle axes: the GLM's; a request's own: its direction and fitted slope)."""
        raw, coef = [], []
        for r in rows:
            if r in self._custom_rows:
                raw.append(self._axes[r].astype(np.float64))
                coef.append(self._custom_rows[r])
            else:
                assert self.bundle is not None
                raw.append(np.asarray(self.bundle.raw_directions[r], dtype=np.float64))
                coef.append(float(self.bundle.stats[r].get("coef_norm") or 0.0))
        return np.array(raw), np.array(coef)

    def edit(self, z: np.ndarray, moves: Mapping[str, float],
             locked: Sequence[str] = ()) -> np.ndarray:
        """Move a latent (L,) by distances along unit axes; locked axes are projected out.

        Several moves add up; locking applies to the summed move (so a locked axis's own
        move is cancelled too). Axes are the bundle's and, on a pipeline from
        :meth:`with_custom`, the request's own.
        """
        if z.shape != (self.latent_size,):
            raise ValueError(f"latent: expected {self.latent_size} numbers, got {z.shape}")
        if not moves and not locked:
            return z.copy()
        def axis(name: str, field: str) -> np.ndarray:
            return self._axes[self.axis_index(name, field)].astype(np.float64)

        dirs, dists = [], []
        for name, dist in moves.items():
            if not isinstance(dist, (int, float)) or not math.isfinite(dist):
                raise ValueError(f"moves.{clip(name)}: distance must be a finite number")
            dirs.append(axis(name, "moves"))
            dists.append(float(dist))
        locks = [axis(n, "locked") for n in dict.fromkeys(locked)]
        empty = np.zeros((0, self.latent_size))
        moved = apply_moves(z, np.array(dirs) if dirs else empty, np.asarray(dists),
                            np.array(locks) if locks else empty)
        return moved.astype(np.float32)

    # -- local edits -------------------------------------------------------------------
    @property
    def has_locality(self) -> bool:
        """Whether local edits are available (the bundle ships masks for this generator)."""
        return self._no_locality is None

    @property
    def local_axes(self) -> list[str]:
        """The axes whose moves a local edit confines to their mask (the others are global)."""
        return [n for n in self.axis_names if n in self._masks]

    def resolve_locality(self, locality: bool | None) -> bool:
        """The locality an edit uses: ``None`` means on when available (the default, chosen
        on ``bench/locality.py``); True where it is unavailable is a ValueError naming
        ``locality``."""
        if locality is None:
            return self.has_locality
        if locality and self._no_locality is not None:
            raise ValueError(f"locality: local edits are unavailable: {self._no_locality}")
        return bool(locality)

    def locality_mask(self, moves: Mapping[str, float]) -> np.ndarray | None:
        """The mask (H, W) a local edit with ``moves`` blends with; None when the edit is
        global (a moved axis is global or one of a request's own, or nothing moves)."""
        return blend_mask(self._masks, moves, self.resolution) if self._masks else None

    def render_edit(self, start: np.ndarray, moved: np.ndarray, moves: Mapping[str, float],
                    locality: bool, with_features: bool = True
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The faces of an edit from ``start`` (N, L) to ``moved`` (N, L) by ``moves``:
        locality off (or a global edit) renders ``moved``, exactly as
        :meth:`render_and_label`; on, the move's effect is kept inside the moved axes'
        mask (``tlgan.locality``). Returns uint8 faces and probabilities (or None)."""
        mask = self.locality_mask(moves) if locality else None
        if mask is None:
            return self.render_and_label(moved, with_features)
        masks = np.broadcast_to(mask, (len(moved), *mask.shape))
        x = render_local(self.generator, start, moved, masks)
        images = to_uint8(x)
        return images, (self._label_tensor(x) if with_features else None)

    def local_locks(self, start: np.ndarray, moved: np.ndarray, moves: Mapping[str, float],
                    locked: Sequence[str], tolerance: float = LOCK_TOLERANCE
                    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The local face of an edit from ``start`` (L,) to ``moved`` (L,) (its locks
        already held by :meth:`hold_locks`), its probabilities and the held locks whose
        probability on that face is more than ``tolerance`` from the start face's."""
        held = self.held_locks(locked)
        _, p0 = self.render_and_label(start[None, :].astype(np.float32))
        images, probs = self.render_edit(start[None, :], moved[None, :], moves, True)
        assert p0 is not None and probs is not None
        cols = [self.attributes.index(a) for a in held]
        bad = np.abs(probs[0, cols] - p0[0, cols]) > tolerance
        return images, probs, [a for a, b in zip(held, bad, strict=True) if b]

    def held_locks(self, locked: Sequence[str]) -> list[str]:
        """The locked axes that :meth:`hold_locks` holds closed-loop: those that are also
        extractor attributes, when an extractor is loaded (others stay open-loop)."""
        if self.extractor is None:
            return []
        attrs = set(self.attributes)
        return [n for n in dict.fromkeys(locked) if n in attrs and n in self._axis_index]

    def hold_locks(self, start: np.ndarray, moved: np.ndarray, locked: Sequence[str], *,
                   tolerance: float = LOCK_TOLERANCE, max_steps: int = LOCK_MAX_STEPS,
                   should_stop: Callable[[], bool] | None = None) -> HoldResult:
        """Closed-loop locks: keep each locked attribute's probability where it was per face.

        ``moved`` (N, L) are ``start`` (N, L) after an open-loop edit (locked axes already
        projected out of the move). That holds the locked attributes only on average; here
        each face is labelled before and after, and while a locked attribute's probability
        is more than ``tolerance`` from its value before the move, the face is corrected
        along the locked axes by a Newton step on the axes' linear model (the logit gaps
        solved through the (K, K) matrix of each locked attribute's GLM slope along each
        locked axis), at most ``max_steps`` times; a step that makes a face worse is
        halved and not taken. Returns the final latents, faces, probabilities and, per
        face, the locked attributes that could not be held. ``should_stop`` is asked before
        every correction step; once it is true, :class:`Stopped` is raised.
        """
        held = self.held_locks(locked)
        if start.shape != moved.shape or start.ndim != 2:
            raise ValueError(f"moved: expected the shape of start {start.shape}, got "
                             f"{moved.shape}")
        n = len(moved)
        if not held or max_steps < 1:
            images, probs = self.render_and_label(moved.astype(np.float32))
            assert probs is not None
            return HoldResult(moved.astype(np.float32), images, probs, [[] for _ in range(n)], 0)
        cols = [self.attributes.index(a) for a in held]
        rows = [self._axis_index[a] for a in held]
        # before and after in one forward pass
        images, probs = self.render_and_label(np.concatenate([start, moved]).astype(np.float32))
        assert probs is not None
        p0 = probs[:n, cols]
        images, probs = images[n:], probs[n:]
        dirs = self._axes[rows].astype(np.float64)
        raw, coef_norm = self._linear_models(rows)
        jac = (raw * coef_norm[:, None]) @ dirs.T  # d logit(attr a) / d step along axis b
        target = p0

        def propose(cur: np.ndarray, p: np.ndarray, unmet: np.ndarray, scale: np.ndarray
                    ) -> np.ndarray:
            active = unmet.any(axis=1)
            sol = np.linalg.lstsq(jac, _logit_gap(p, target).T, rcond=1e-3)[0].T  # (N, K)
            return cur + (np.clip(sol, -1.5, 1.5) * (active * scale)[:, None]) @ dirs

        def error(p: np.ndarray, unmet: np.ndarray) -> np.ndarray:
            return np.abs(p - target).sum(axis=1)

        cur, images, probs, steps = self._closed_loop(
            moved.astype(np.float64), images, probs, cols, target, tolerance, max_steps,
            propose, error, should_stop)
        final = np.abs(probs[:, cols] - target) > tolerance
        unheld = [[a for a, bad in zip(held, row, strict=True) if bad] for row in final]
        return HoldResult(cur.astype(np.float32), images, probs, unheld, steps)

    # -- photos ------------------------------------------------------------------------
    def encode(self, photos: np.ndarray, steps: int, *, starts: int = DEFAULT_STARTS,
               with_features: bool = True,
               should_stop: Callable[[], bool] | None = None) -> EncodeResult:
        """Encode face photos (uint8 (N, R, R, 3), framed like CelebA's aligned crops, at
        the generator's resolution R) into latents of the pipeline's space: the encoder,
        then ``steps`` refinement steps from ``starts`` starting points. The faces
        answered are rendered from the latents answered, exactly as ``render_and_label``
        renders them.

        Raises:
            ValueError: no encoder is loaded, or the photos are malformed (naming ``image``).
            Stopped: ``should_stop`` turned true between refinement steps.
        """
        if self.encoder is None:
            raise ValueError(f"image: this service has no photo encoder for generator "
                             f"{self.generator.name!r} (train one with `tlgan encoder "
                             "train` and serve it with TLGAN_ENCODER)")
        enc = self.encoder.encode(photos, self.extractor, steps, starts=starts,
                                  should_stop=should_stop)
        z = self.generator.to_space(enc.z, self._space_name)
        images, probs = self.render_and_label(z, with_features and self.extractor is not None)
        return EncodeResult(latents=z, images=images, probs=probs, quality=enc.quality,
                            steps=enc.steps)

    # -- interpolation ---------------------------------------------------------------------
    def interpolate(self, a: np.ndarray, b: np.ndarray, ratios: Sequence[float],
                    method: str = "slerp") -> np.ndarray:
        """Latents between a and b (slerp turns around the space's prior mean)."""
        space = self.space
        return interpolate(a, b, ratios, method, None if space.is_standard else space)

    # -- feature-conditioned generation ------------------------------------------------
    def generate_conditioned(self, seeds: Sequence[int], targets: Mapping[str, float],
                             truncation: float = 1.0,
                             should_stop: Callable[[], bool] | None = None
                             ) -> ConditionResult:
        """Feature-conditioned faces for ``seeds``: each starts from the best of its
        candidate latents (:meth:`conditioned_starts`) and is moved until the extractor
        agrees with ``targets`` (:meth:`condition`). ``should_stop`` is asked before the
        first step and every later one (:class:`Stopped` once true)."""
        starts = self.conditioned_starts(seeds, targets, truncation)
        if should_stop is not None and should_stop():
            raise Stopped("stopped before the first step: nobody waits for the result")
        return self.condition(starts, targets, should_stop=should_stop)

    def condition(self, z: np.ndarray, targets: Mapping[str, float], *, tolerance: float = 0.2,
                  max_steps: int = CONDITION_MAX_STEPS, max_step: float = 1.5,
                  max_total: float = 8.0,
                  should_stop: Callable[[], bool] | None = None) -> ConditionResult:
        """Move latents (N, L) along the axes until the extractor agrees with ``targets``.

        A target is met when |p - target| <= tolerance. Each step moves every unmet face
        along each unmet attribute's axis by the logit gap divided by that axis's
        calibration (logit change per unit), clipped to ``max_step``; a face never moves
        more than ``max_total`` from where it started. Returns the final latents, faces,
        probabilities and, per face, the attributes that could not be met. ``should_stop``
        is asked before every step; once it is true, :class:`Stopped` is raised.
        """
        names, attr_idx, axis_idx, tgt = self._targets(targets)
        axes_t = self._axes[axis_idx].astype(np.float64)
        cal = np.array([max(self.calibration.get(n, 1.0), 1e-3) for n in names])

        start = z.astype(np.float64).copy()
        images, probs = self.render_and_label(start.astype(np.float32))
        assert probs is not None

        def propose(cur: np.ndarray, p: np.ndarray, unmet: np.ndarray, scale: np.ndarray
                    ) -> np.ndarray:
            dist = np.clip(_logit_gap(p, tgt) / cal, -max_step, max_step) * unmet
            offset = cur + (dist * scale[:, None]) @ axes_t - start
            norm = np.linalg.norm(offset, axis=1, keepdims=True)
            return start + offset * np.minimum(1.0, max_total / np.maximum(norm, 1e-12))

        def error(p: np.ndarray, unmet: np.ndarray) -> np.ndarray:
            return np.abs(_logit_gap(p, tgt) * unmet).sum(axis=1)

        cur, images, probs, steps = self._closed_loop(
            start.copy(), images, probs, attr_idx, tgt, tolerance, max_steps, propose, error,
            should_stop)
        p = probs[:, attr_idx]
        unmet = [[n for n, ok in zip(names, row, strict=True) if not ok]
                 for row in (np.abs(p - tgt) <= tolerance)]
        return ConditionResult(cur.astype(np.float32), images, probs, unmet, steps)

    def _closed_loop(self, cur: np.ndarray, images: np.ndarray, probs: np.ndarray,
                     cols: list[int], target: np.ndarray, tolerance: float, max_steps: int,
                     propose: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                                       np.ndarray],
                     error: Callable[[np.ndarray, np.ndarray], np.ndarray],
                     should_stop: Callable[[], bool] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Move faces until the extractor's probabilities ``probs[:, cols]`` are within
        ``tolerance`` of ``target`` (shared by :meth:`condition` and :meth:`hold_locks`).

        Each step renders ``propose(cur, p, unmet, scale)`` for the faces still off target;
        a face takes its candidate when ``error(p, unmet)`` falls, else its step ``scale``
        is halved. Only the faces still off target are rendered. Returns the latents, faces,
        probabilities and the steps taken; raises :class:`Stopped` when ``should_stop()``
        turns true before a step.
        """
        scale = np.ones(len(cur))  # per-face step scale, halved when a step made things worse
        steps = 0
        for steps in range(1, max_steps + 1):
            if should_stop is not None and should_stop():
                raise Stopped("stopped between steps: nobody waits for the result")
            p = probs[:, cols]
            unmet = np.abs(p - target) > tolerance
            active = unmet.any(axis=1)
            if not active.any():
                steps -= 1
                break
            rows = np.flatnonzero(active)
            cand = propose(cur, p, unmet, scale)
            cand_images, rows_probs = self.render_and_label(cand[rows].astype(np.float32))
            assert rows_probs is not None
            cand_probs = probs.copy()
            cand_probs[rows] = rows_probs
            better = active & (error(cand_probs[:, cols], unmet) < error(p, unmet))
            cur[better] = cand[better]
            images[rows[better[rows]]] = cand_images[better[rows]]
            probs[better] = cand_probs[better]
            scale[active & ~better] *= 0.5
        return cur, images, probs, steps

    def summary(self) -> str:
        """One readable line: the models loaded (for logs)."""
        g = self.generator
        ext = (f"extractor {self.extractor.name} ({self.extractor.sha256[:12]})"
               if self.extractor is not None else "no extractor")
        axes = (f"bundle {self.bundle_id} ({len(self.axis_names)} axes, references "
                f"{', '.join(self.bundle.references) or 'none'})" if self.bundle is not None
                else "no axes")
        enc = (f"encoder {self.encoder.name} ({self.encoder.sha256[:12]})"
               if self.encoder is not None else "no photo encoder")
        return (f"generator {g.name} ({g.sha256[:12]}, {g.resolution} px, "
                f"{self._space_name} in R^{self.latent_size}), {ext}, {axes}, {enc}, "
                f"device {g.device}")

    def describe(self) -> dict[str, Any]:
        return {
            "generator": self.generator.describe(),
            "extractor": self.extractor.name if self.extractor else None,
            "bundle": self.bundle_id,
            "axes": self.axis_names,
            "encoder": self.encoder.describe() if self.encoder is not None else None,
        }


def _bundle_heads(bundle: AxisBundle, extractor: Extractor) -> list[tuple[str, Head]]:
    """The bundle axes that carry a head for this extractor's embeddings and are not
    already extractor attributes, with their heads."""
    out = []
    attrs = set(extractor.attributes)
    for name in bundle.names:
        raw = bundle.head(name)
        if name in attrs or raw is None:
            continue
        try:
            head = Head.from_dict(raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"bundle: axis {name!r} carries an unreadable head ({exc})") from exc
        if head.embedding_size != extractor.embedding_size:
            raise ValueError(f"bundle: axis {name!r} carries a head for embeddings of size "
                             f"{head.embedding_size}, extractor {extractor.name!r} gives "
                             f"{extractor.embedding_size}")
        out.append((name, head))
    return out


def _logit_gap(probs: np.ndarray, targets: np.ndarray, eps: float = 0.02) -> np.ndarray:
    """logit(target) - logit(p), both clipped to [eps, 1 - eps] (saturated outputs count as
    eps away, so a gap stays finite)."""
    tc = np.clip(targets, eps, 1 - eps)
    pc = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    return np.asarray(np.log(tc / (1 - tc)) - np.log(pc / (1 - pc)))
