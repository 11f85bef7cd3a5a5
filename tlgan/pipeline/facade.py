"""One object that ties a generator, an extractor and an axis bundle together.

The API and the CLI call this; it owns all model work. Inputs are plain Python / numpy values
and outputs are numpy arrays: tensors never leave the pipeline. The work itself lives beside
it: :mod:`~tlgan.pipeline.models` (render and label), :mod:`~tlgan.pipeline.axis_table`
(axes, moves, masks), :mod:`~tlgan.pipeline.control` (closed loops) and
:mod:`~tlgan.pipeline.photo_encoding` (photos).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from axes.bundle import AxisBundle
from axes.heads import Head
from axes.samples import SampleCache
from feature_extractor.model import Extractor
from tlgan.encoders import DEFAULT_STARTS
from tlgan.encoders.photo_encoder import PhotoEncoder
from tlgan.generators.base import FaceGenerator
from tlgan.latents import DEFAULT_SPACE, LatentSpace, interpolate
from tlgan.pipeline import control, local_edits
from tlgan.pipeline.axis_table import AxisTable
from tlgan.pipeline.control import ConditionResult, HoldResult
from tlgan.pipeline.local_edits import edit_renderer, labelled
from tlgan.pipeline.models import Models, bundle_heads
from tlgan.pipeline.photo_encoding import EncodeResult, encode_photos
from tlgan.pipeline.ranking import (
    DEFAULT_CANDIDATES,
    RAW,
    REFINED,
    SeededLatents,
    best_ranked,
    candidate_pool,
    rank_pool,
    refine_latents,
    resolve_quality,
    seeded_latents,
)
from tlgan.pipeline.realism import (
    REALISM_MAX_STEPS,
    REALISM_MAX_TOTAL,
    Realism,
    critic_score_grad,
    hold_realism,
)
from tlgan.upscale.upscaler import Upscaler, for_size, wants_upscale
from tlgan_base.domain_errors import Stopped, clip
from tlgan_base.protocols import LatentRealismScorer

__all__ = ["LoadedPipeline", "Pipeline"]


@dataclass
class LoadedPipeline:
    """Generator + extractor + axes, as loaded: what they are, rendering and labelling.

    Args:
        generator: renders latents.
        extractor: labels faces with attribute probabilities (None: no labelling).
        bundle: the feature axes (None: no editing).
        calibration: logit change per unit step, per axis name (used to size the steps of
            feature-conditioned generation); missing axes default to 1.0.
        encoder: the photo encoder trained for this generator (None: no photo encoding).
        critic: the realism critic trained for this generator (None: no critic; faces are
            only sampled ``raw`` and edits do not hold realism).
        upscaler: the face upscaler faces asked for at 128 px or more pass through before
            they are resized (None: Lanczos alone).
        pass_faces: the most faces the extractor labels or embeds in one forward pass (more
            are done in chunks, with the same results), so that work labelling many faces at
            once (conditioned starts, taught examples) holds a bounded amount of memory.

    Latents in and out live in the bundle's latent space (``bundle.latent_space``, "z"
    without a bundle): seeds map to it, edits move in it and faces render from it.
    ``models`` (:class:`Models`) and ``table`` (:class:`AxisTable`) hold the work;
    :class:`Pipeline` adds edits, closed loops and photos.
    """

    generator: FaceGenerator
    extractor: Extractor | None = None
    bundle: AxisBundle | None = None
    calibration: dict[str, float] = field(default_factory=dict)
    samples: SampleCache | None = None
    encoder: PhotoEncoder | None = None
    pass_faces: int = 64
    critic: LatentRealismScorer | None = None
    upscaler: Upscaler | None = None

    def __post_init__(self) -> None:
        self.models = Models(self.generator, self.extractor, pass_faces=self.pass_faces,
                             critic=self.critic)
        space = DEFAULT_SPACE
        self._samples_lock = threading.Lock()
        if self.bundle is not None:
            space = self.bundle.latent_space
            if space not in self.generator.space_names:
                raise ValueError(
                    f"bundle: axes live in latent space {space!r}, generator "
                    f"{self.generator.name!r} has no such space (it has: "
                    f"{', '.join(self.generator.space_names)})")
        self.models.space = space
        self.table = AxisTable.build(self.generator, self.bundle, space)
        if self.bundle is not None:
            if not self.calibration:
                self.calibration = {n: float(c) for n, c in zip(
                    self.bundle.names, self.bundle.calibration, strict=True)
                    if np.isfinite(c) and c > 0}
            if self.extractor is not None:
                self.models.heads = bundle_heads(self.bundle, self.extractor)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in ("pass_faces", "critic") and "models" in self.__dict__:  # set later
            self.models = dataclasses.replace(self.models, **{name: value})

    # -- what is loaded ----------------------------------------------------------------
    @property
    def latent_space(self) -> str:
        """The name of the latent space latents in and out live in (the bundle's)."""
        return self.models.space

    @property
    def space(self) -> LatentSpace:
        """The :class:`LatentSpace` latents in and out live in."""
        return self.generator.space(self.models.space)

    @property
    def latent_size(self) -> int:
        return self.models.latent_size

    @property
    def resolution(self) -> int:
        return self.generator.resolution

    @property
    def attributes(self) -> list[str]:
        """The attributes faces are labelled with: the extractor's, then the bundle axes
        that carry a head (``tlgan axes add/teach/import``) and a request's own heads."""
        return self.models.attributes

    @property
    def head_axes(self) -> list[str]:
        """The axes labelled by their own head (columns after the extractor's attributes)."""
        return self.models.head_axes

    @property
    def axis_names(self) -> list[str]:
        return self.table.axis_names

    @property
    def bundle_id(self) -> str | None:
        return self.bundle.id if self.bundle is not None else None

    @property
    def _axes(self) -> np.ndarray:
        return self.table.axes

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

    # -- rendering and labelling (tlgan.pipeline.models) -------------------------------
    def seeds_to_latents(self, seeds: Sequence[int], truncation: float = 1.0) -> np.ndarray:
        """Seeded latents (see tlgan.latents for the reproducibility contract), in the
        pipeline's latent space."""
        return self.generator.sample_latents(seeds, truncation, self.latent_space)

    def seeded_latents(self, seeds: Sequence[int], truncation: float = 1.0,
                       quality: str | None = None, candidates: int = DEFAULT_CANDIDATES
                       ) -> SeededLatents:
        """One latent per seed: the seed's own (``raw``), the most realistic of
        ``candidates`` (``ranked``) or its own refined by the critic orthogonal to the
        bundle's axes (``refined``; :func:`tlgan.pipeline.ranking.seeded_latents`)."""
        return seeded_latents(self.models, seeds, truncation, quality, candidates,
                              self.bundle_axes())

    def bundle_axes(self) -> np.ndarray:
        """The axis bundle's directions (A, L) (no rows without a bundle): what refined
        sampling keeps (a request's own axes are not among them)."""
        if self.bundle is None:
            return np.zeros((0, self.latent_size), np.float64)
        return np.asarray(self.bundle.directions, np.float64)

    def render(self, z: np.ndarray) -> np.ndarray:
        """Latents (N, L) -> uint8 faces (N, H, W, 3)."""
        return self.models.render(z)

    def render_and_label(self, z: np.ndarray, with_features: bool = True
                         ) -> tuple[np.ndarray, np.ndarray | None]:
        """Uint8 faces (N, H, W, 3) of latents (N, L) and their probabilities (N, A) or None."""
        return self.models.render_and_label(z, with_features)

    def embed_latents(self, z: np.ndarray) -> np.ndarray:
        """The extractor's embeddings (N, E) of the faces of latents z (N, L)."""
        return self.models.embed_latents(z)

    def label_latents(self, z: np.ndarray, space: str | None = None) -> np.ndarray:
        """Probabilities (N, A) of the faces of z (latents of ``space``; None: the pipeline's)."""
        return self.models.label_latents(z, space)

    def features_dict(self, probs: np.ndarray) -> dict[str, float]:
        """One face's probabilities as {attribute: probability}."""
        return self.models.features_dict(probs)

    def custom_heads(self, raw: Mapping[str, Mapping[str, Any]]) -> dict[str, Head]:
        """Validate a request's heads (:meth:`Models.custom_heads`)."""
        return self.models.custom_heads(raw)

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
        judge = (f"critic {self.critic.name} ({self.critic.sha256[:12]})"
                 if self.critic is not None else "no critic")
        up = (f"upscaler {self.upscaler.name} ({self.upscaler.sha256[:12]})"
              if self.upscaler is not None else "no upscaler")
        return (f"generator {g.name} ({g.sha256[:12]}, {g.resolution} px, "
                f"{self.latent_space} in R^{self.latent_size}), {ext}, {axes}, {enc}, "
                f"{judge}, {up}, device {g.device}")

    def describe(self) -> dict[str, Any]:
        return {
            "generator": self.generator.describe(),
            "extractor": self.extractor.name if self.extractor else None,
            "bundle": self.bundle_id,
            "axes": self.axis_names,
            "encoder": self.encoder.describe() if self.encoder is not None else None,
            "critic": self.critic.describe() if self.critic is not None else None,
            "upscaler": self.upscaler.describe() if self.upscaler is not None else None,
        }

    # -- faces for display ---------------------------------------------------------------
    def upscales(self, size: int | None) -> bool:
        """Whether faces asked for at ``size`` px pass through the upscaler."""
        return wants_upscale(self.upscaler, self.resolution, size)

    def for_display(self, images: np.ndarray, size: int | None) -> np.ndarray:
        """uint8 faces (N, H, W, 3) ready to be encoded at ``size`` px: upscaled by the
        upscaler when :meth:`upscales` (then resized by the encoder), else unchanged."""
        return for_size(self.upscaler, images, size)


class Pipeline(LoadedPipeline):
    """A loaded pipeline that edits: the axis table (moves, a request's own axes, local
    edits), closed loops (locks, references, feature targets) and photo encoding.
    Construct it as :class:`LoadedPipeline`."""

    # -- the axis table (tlgan.pipeline.axis_table) ------------------------------------
    def axis_index(self, name: str, field_name: str = "moves") -> int:
        """Index of an axis, or ValueError naming the field and listing valid names."""
        return self.table.axis_index(name, field_name)

    def custom_axes(self, raw: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
        """Validate a request's own axes (:meth:`AxisTable.custom_axes`)."""
        return self.table.custom_axes(raw)

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
        slopes = {n: self._head_slope(heads[n], custom[n]) if n in heads else 1.0
                  for n in custom}
        out = copy.copy(self)
        out.table = self.table.with_custom(custom, slopes)
        out.models = self.models.with_heads([(n, heads[n]) for n in custom if n in heads])
        out.calibration = {**self.calibration, **slopes}
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

    def edit(self, z: np.ndarray, moves: Mapping[str, float],
             locked: Sequence[str] = ()) -> np.ndarray:
        """Move a latent (L,) by distances along unit axes; locked axes are projected out
        of the summed move (:meth:`AxisTable.edit`)."""
        return self.table.edit(z, moves, locked)

    @property
    def has_locality(self) -> bool:
        """Whether local edits are available (the bundle ships masks for this generator)."""
        return self.table.has_locality

    @property
    def local_axes(self) -> list[str]:
        """The axes whose moves a local edit confines to their mask (the others are global)."""
        return self.table.local_axes

    def resolve_locality(self, locality: bool | None) -> bool:
        """The locality an edit uses (:meth:`AxisTable.resolve_locality`)."""
        return self.table.resolve_locality(locality)

    def locality_mask(self, moves: Mapping[str, float]) -> np.ndarray | None:
        """The mask (H, W) a local edit with ``moves`` blends with; None when global."""
        return self.table.locality_mask(moves)

    # -- edits and closed loops (tlgan.pipeline.control, tlgan.pipeline.local_edits) -
    def render_edit(self, start: np.ndarray, moved: np.ndarray, moves: Mapping[str, float],
                    locality: bool, with_features: bool = True
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The faces of an edit, local or not (:func:`local_edits.render_edit`)."""
        return local_edits.render_edit(self.models, self.table, start, moved, moves,
                                       locality, with_features)

    def local_locks(self, start: np.ndarray, moved: np.ndarray, moves: Mapping[str, float],
                    locked: Sequence[str], tolerance: float = control.LOCK_TOLERANCE
                    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The local face of a held edit and its unheld locks (:func:`local_edits.local_locks`)."""
        return local_edits.local_locks(self.models, self.table, start, moved, moves, locked,
                                       tolerance)

    def held_locks(self, locked: Sequence[str]) -> list[str]:
        """The locked axes held closed-loop (:func:`control.held_locks`)."""
        return control.held_locks(self.table, self.attributes, locked)

    def held_references(self, moves: Mapping[str, float], locked: Sequence[str] = ()
                        ) -> list[str]:
        """The references an edit holds per face (:func:`control.held_references`)."""
        return control.held_references(self.table, self.attributes, moves, locked)

    def hold_locks(self, start: np.ndarray, moved: np.ndarray, locked: Sequence[str], *,
                   tolerance: float = control.LOCK_TOLERANCE,
                   max_steps: int = control.LOCK_MAX_STEPS,
                   should_stop: Callable[[], bool] | None = None) -> HoldResult:
        """Closed-loop locks per face (:func:`control.hold_locks`)."""
        return control.hold_locks(labelled(self.render_and_label), self.table,
                                  self.attributes, start, moved, locked, tolerance=tolerance,
                                  max_steps=max_steps, should_stop=should_stop)

    def resolve_hold_references(self, hold: bool | None) -> bool:
        """Whether an edit holds its references (:func:`control.resolve_hold_references`)."""
        return control.resolve_hold_references(self.table, self.attributes, hold)

    def hold_edit(self, start: np.ndarray, moved: np.ndarray, moves: Mapping[str, float],
                  locked: Sequence[str] = (), *, locality: bool = False,
                  tolerance: float = control.LOCK_TOLERANCE,
                  max_steps: int = control.LOCK_MAX_STEPS,
                  should_stop: Callable[[], bool] | None = None) -> HoldResult:
        """An edit with its references held per face (:func:`control.hold_edit`); with
        ``locality`` the faces are rendered and judged as local edits (``moves``' mask)."""
        mask = self.locality_mask(moves) if locality else None
        return control.hold_edit(edit_renderer(self.models, start, mask), self.table,
                                 self.attributes, start, moved, moves, locked,
                                 tolerance=tolerance, max_steps=max_steps,
                                 should_stop=should_stop)

    def hold_realism(self, start: np.ndarray, moved: np.ndarray, fixed: np.ndarray, *,
                     max_steps: int = REALISM_MAX_STEPS,
                     max_total: float = REALISM_MAX_TOTAL,
                     scores: tuple[np.ndarray, np.ndarray] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> Realism:
        """Edited latents ``moved`` (N, L) of ``start`` (N, L) with their realism held by the
        critic's latent scores (:func:`tlgan.pipeline.realism.hold_realism`), corrections
        orthogonal to the rows of ``fixed`` (F, L); for a local edit the latent scored is
        the moved one (the critic scores latents, not the blended face); ``max_steps`` 0
        only checks; ``max_total``: the farthest a correction may go; ``scores``: the start and
        edited latents' scores when known.
        ValueError naming ``realism`` without a critic."""
        if self.critic is None:
            raise ValueError("realism: this service has no realism critic loaded")
        score = critic_score_grad(self.critic, self.latent_space, self.generator.device,
                                  self.generator.max_batch)
        return hold_realism(score, start, moved, fixed, max_steps=max_steps,
                            max_total=max_total, scores=scores,
                            should_stop=should_stop)

    # -- feature-conditioned generation ------------------------------------------------
    def conditioned_starts(self, seeds: Sequence[int], targets: Mapping[str, float],
                           truncation: float = 1.0, candidates: int = control.CONDITION_CANDIDATES,
                           quality: str | None = RAW) -> np.ndarray:
        """Starting latents (N, L) for feature-conditioned generation: for each seed, the one
        of ``candidates`` latents (:func:`tlgan.latents.candidate_latents`; the seed's own is
        the first) whose labelled face is nearest ``targets``
        (:func:`control.nearest_candidates`); with ``quality`` ``ranked``, nearest among
        the better-ranked half by the critic (:meth:`ranked_starts`). Deterministic for the
        same arguments."""
        return self.ranked_starts(seeds, targets, truncation, candidates, quality)[0]

    def ranked_starts(self, seeds: Sequence[int], targets: Mapping[str, float],
                      truncation: float = 1.0, candidates: int = control.CONDITION_CANDIDATES,
                      quality: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`conditioned_starts` and the candidate each start is (None with ``raw``).

        ``quality`` None: ``resolve_quality``'s default. Ranked, each seed's candidates
        are scored by the critic and only the ``ceil(candidates / 2)`` most realistic may
        be chosen; the nearest to the targets of those is the start.
        """
        _, attr_idx, _, tgt = self._targets(targets)
        if candidates < 1:
            raise ValueError(f"candidates: must be >= 1, got {candidates}")
        quality = resolve_quality(quality, self.critic, self.generator.name)
        pool = candidate_pool(self.models, seeds, truncation, candidates)
        if quality in (RAW, REFINED):
            starts = pool if candidates == 1 or len(pool) == 0 else (
                control.nearest_candidates(pool, self.label_latents(pool)[:, attr_idx],
                                           candidates, tgt))
            if quality == RAW:
                return starts, None
            assert self.critic is not None
            return refine_latents(self.critic, self.models, starts, self.bundle_axes())[0], None
        assert self.critic is not None
        faces = len(seeds)
        if len(pool) == 0:
            return pool, np.zeros(0, np.int64)
        _, probs = self.render_and_label(pool)
        assert probs is not None
        allowed = best_ranked(rank_pool(self.critic, self.models, pool, candidates),
                              -(-candidates // 2))
        best = control.nearest_index(probs[:, attr_idx], candidates, tgt, allowed)
        return pool.reshape(faces, candidates, -1)[np.arange(faces), best], best

    def _targets(self, targets: Mapping[str, float]
                 ) -> tuple[list[str], list[int], list[int], np.ndarray]:
        return control.feature_targets(self.table, self.attributes, self.extractor is not None,
                                       targets)

    def generate_conditioned(self, seeds: Sequence[int], targets: Mapping[str, float],
                             truncation: float = 1.0,
                             should_stop: Callable[[], bool] | None = None,
                             quality: str | None = RAW) -> ConditionResult:
        """Feature-conditioned faces for ``seeds``: each starts from the best of its
        candidate latents (:meth:`ranked_starts`, ranked by the critic with ``quality``
        ``ranked``; None: ``resolve_quality``'s default) and is moved until the extractor
        agrees with ``targets`` (:meth:`condition`); ranked, the result also says which
        candidate each face started from and the realism score of the face returned.
        ``should_stop`` is asked before the first step and every later one (:class:`Stopped`
        once true)."""
        starts, chosen = self.ranked_starts(seeds, targets, truncation, quality=quality)
        if should_stop is not None and should_stop():
            raise Stopped("stopped before the first step: nobody waits for the result")
        result = self.condition(starts, targets, should_stop=should_stop)
        refined = resolve_quality(quality, self.critic, self.generator.name) == REFINED
        if (chosen is not None or refined) and self.critic is not None:
            result.chosen = chosen
            result.realism = self.critic.score_latents(result.latents, self.latent_space)
        return result

    def condition(self, z: np.ndarray, targets: Mapping[str, float], *, tolerance: float = 0.2,
                  max_steps: int = control.CONDITION_MAX_STEPS, max_step: float = 1.5,
                  max_total: float = 8.0,
                  should_stop: Callable[[], bool] | None = None) -> ConditionResult:
        """Move latents (N, L) along the axes until the extractor agrees with ``targets``
        (:func:`control.condition`, steps sized by ``calibration``)."""
        names, attr_idx, axis_idx, tgt = self._targets(targets)
        return control.condition(labelled(self.render_and_label), self._axes[axis_idx], names,
                                 attr_idx, tgt, self.calibration, z, tolerance=tolerance,
                                 max_steps=max_steps, max_step=max_step, max_total=max_total,
                                 should_stop=should_stop)

    # -- photos and interpolation ------------------------------------------------------
    def encode(self, photos: np.ndarray, steps: int, *, starts: int = DEFAULT_STARTS,
               with_features: bool = True,
               should_stop: Callable[[], bool] | None = None) -> EncodeResult:
        """Encode face photos into latents of the pipeline's space (:func:`encode_photos`)."""
        return encode_photos(self.encoder, self.models, photos, steps, starts=starts,
                             with_features=with_features, should_stop=should_stop)

    def interpolate(self, a: np.ndarray, b: np.ndarray, ratios: Sequence[float],
                    method: str = "slerp") -> np.ndarray:
        """Latents between a and b (slerp turns around the space's prior mean)."""
        space = self.space
        return interpolate(a, b, ratios, method, None if space.is_standard else space)
