"""The photo edit use case: a photo, moves and locks in; the whole photo, edited, out.

A request runs in three stages that a server may place apart (:func:`photo_edit` runs them
in a row): :func:`locate` (decode the photo upright, find the face or take the client's
eyes, align it: upload-sized memory, no model), :meth:`PhotoEditRequest.run_model` (encode,
tune the adapter, move with the edit use case :func:`tlgan.pipeline.edit_plan.plan_edit`, render
with the adapter: model work costing :meth:`PhotoEditRequest.cost` face-passes) and
:func:`compose` (the edit carried into the photo). The API's ``POST /photo/edit`` and
``tlgan photo edit`` call this.

Locks and references are held closed-loop on the untuned generator's renders (the
extractor labels the face the pipeline renders); the adapter then renders the latent those
holds chose. ``features`` are the labels of that untuned render of the moved latent.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tlgan.encoders.losses import psnr
from tlgan.encoders.photo_encoder import encode_cost
from tlgan.generators.base import to_uint8
from tlgan.photos.adapter import Adapter, TuneSettings, render_adapted, settings_for, tune_adapter
from tlgan.photos.compose import compose_edit
from tlgan.photos.faces import FaceDetector
from tlgan.photos.photo_edit import Located, Moved, implied_box, locate_face, move_face
from tlgan.photos.prepare import UprightPhoto, faces_json
from tlgan.pipeline.edit_plan import EditPlan, LatentCheck, plan_edit
from tlgan.pipeline.facade import Pipeline
from tlgan.pipeline.photo_encoding import EncodeResult
from tlgan_base.image_codec import MAX_PHOTO_PIXELS

__all__ = [
    "PHOTO_ENCODE_STEPS",
    "PhotoEditRequest",
    "PhotoEdited",
    "adapt_encoded",
    "adapted_faces",
    "compose",
    "encode_adapter_cost",
    "encode_with_adapter",
    "locate",
    "photo_edit",
    "tune_cost",
]

#: refinement steps after the encoder for a photo edit's first request (the adapter's tuning
#: recovers the likeness; refinement would cost most of the 3 s budget of a 12 MP photo)
PHOTO_ENCODE_STEPS = 0
#: face-passes per tuning step and latent rendered in it (forward, backward and Adam)
TUNE_PASSES_PER_STEP = 3.0


def tune_cost(settings: TuneSettings) -> float:
    """The face-passes of tuning an adapter: each step renders the photo's latent, and every
    ``near_every``-th step also ``near`` regularizing latents, forward and backward."""
    held = -(-settings.steps // settings.near_every)
    return (settings.steps + settings.near * held) * TUNE_PASSES_PER_STEP


@dataclass(frozen=True)
class PhotoEditRequest:
    """What a photo edit asks for, validated by :meth:`check` before any work: the moves and
    locks (as ``POST /edit``), the face (index, or the client's ``eyes``), the face's
    ``latent`` and ``adapter`` from an earlier answer (skip encoding and tuning), the
    encoder's refinement ``steps`` and the adapter's ``tune``."""

    moves: Mapping[str, float] = field(default_factory=dict)
    locked: Sequence[str] = ()
    face: int | None = None
    latent: np.ndarray | None = None
    adapter: Adapter | None = None
    eyes: object | None = None
    locality: bool | None = None
    hold_references: bool | None = None
    with_features: bool = True
    steps: int = PHOTO_ENCODE_STEPS
    tune: TuneSettings = field(default_factory=TuneSettings)

    def plan(self, pipeline: Pipeline, z: np.ndarray, check: LatentCheck | None = None
             ) -> EditPlan:
        """The edit use case's plan of this request's moves of latent ``z`` (L,) (realism
        is neither checked nor held: a photo's face is rendered by its adapter)."""
        return plan_edit(pipeline, np.asarray(z, np.float32)[None], self.moves, self.locked,
                         locality=self.locality, hold_references=self.hold_references,
                         with_features=self.with_features, check=check,
                         check_realism=False)

    def check(self, pipeline: Pipeline) -> EditPlan:
        """Validate the request against ``pipeline`` (moves, locks, options, latent,
        adapter) before any work; returns a plan of its moves for its cost.

        Raises:
            ValueError: naming ``latent``, ``adapter``, ``moves``, ``locked``,
                ``locality``, ``hold_references`` or ``image`` (no encoder, or a pipeline
                whose latents are not the generator's z, which adapters need).
        """
        if pipeline.latent_space != "z":
            raise ValueError(f"image: photo edits need latents in z; this service's live in "
                             f"{pipeline.latent_space!r}")
        if self.latent is None:
            if self.adapter is not None:
                raise ValueError("adapter: comes with the latent it was tuned for (send "
                                 "both)")
            if pipeline.encoder is None:
                raise ValueError(f"image: this service has no photo encoder for generator "
                                 f"{pipeline.generator.name!r} (send an earlier answer's "
                                 "`latent`)")
            start = np.zeros(pipeline.latent_size, np.float32)
        else:
            start = self.latent
        return self.plan(pipeline, start)

    def cost(self, plan: EditPlan) -> float:
        """The most face-passes :meth:`run_model` takes (for a scheduler)."""
        encode = encode_cost(1, self.steps) if self.latent is None else 0.0
        tune = tune_cost(self.tune) if self.adapter is None else 0.0
        return encode + tune + plan.cost + 2.0

    def run_model(self, pipeline: Pipeline, aligned: np.ndarray,
                  check: LatentCheck | None = None,
                  should_stop: Callable[[], bool] | None = None) -> ModelWork:
        """Encode (unless ``latent``), tune (unless ``adapter``), move and render the
        aligned face; ``check`` sees the moved latents (as :func:`plan_edit`)."""
        plans: list[EditPlan] = []

        def encode_fn(face: np.ndarray) -> np.ndarray:
            return pipeline.encode(face[None], self.steps, with_features=False,
                                   should_stop=should_stop).latents[0]

        def moves_fn(z: np.ndarray) -> np.ndarray:
            plans.append(self.plan(pipeline, z, check))
            moved: np.ndarray = plans[0].moved[0]
            return moved

        moved = move_face(pipeline.generator, aligned, encode_fn=encode_fn, moves_fn=moves_fn,
                          latent=self.latent, adapter=self.adapter, tune=self.tune,
                          should_stop=should_stop, extractor=pipeline.extractor)
        # the closed loops (locks, references, locality) on the untuned renders; the
        # adapter renders the latent they chose
        t = time.perf_counter()
        result = plans[0].run(should_stop)
        held = result.latents[0]
        if not np.array_equal(held, moved.moved):
            moved = _rerender(pipeline, moved, held)
        moved.timings["render"] += time.perf_counter() - t
        probs = None if result.probs is None else result.probs[0]
        unheld = None if result.unheld is None else result.unheld[0]
        return ModelWork(moved=moved, probs=probs, unheld=unheld, locality=result.locality,
                         hold_references=result.hold_references,
                         attributes=result.attributes)


def adapted_faces(pipeline: Pipeline, z: np.ndarray, adapter: Adapter | None) -> np.ndarray:
    """The faces (uint8 (N, R, R, 3)) of latents z (N, L; the generator's z) rendered with
    ``adapter`` (None: as the pipeline renders them)."""
    if adapter is None:
        return pipeline.render(z)
    return to_uint8(render_adapted(pipeline.generator, z, adapter))


def encode_with_adapter(pipeline: Pipeline, photo: np.ndarray, steps: int, *,
                        with_features: bool = True, tune: TuneSettings | None = None,
                        should_stop: Callable[[], bool] | None = None
                        ) -> tuple[EncodeResult, Adapter | None]:
    """Encode one aligned face (uint8 (R, R, 3)) and tune its photo adapter (``tune``
    None: no adapter; nor where the pipeline's latents are not the generator's z): the
    result's image is then the adapter's render and its ``psnr`` that image's (the other
    qualities and the labels are the untuned render's). :func:`encode_adapter_cost` is its
    cost."""
    result = pipeline.encode(photo[None], steps, with_features=with_features,
                             should_stop=should_stop)
    if tune is None or pipeline.latent_space != "z":
        return result, None
    adapted, tuned = adapt_encoded(pipeline, result, photo[None], tune, should_stop=should_stop)
    return adapted, tuned[0]


def adapt_encoded(pipeline: Pipeline, result: EncodeResult, photos: np.ndarray,
                  tune: TuneSettings, *, should_stop: Callable[[], bool] | None = None
                  ) -> tuple[EncodeResult, list[Adapter]]:
    """Tune a photo adapter for each face of ``result`` (what ``pipeline.encode`` gave for
    the aligned ``photos``, uint8 (N, R, R, 3)): the result with each image the adapter's
    render and its ``psnr`` that image's (the other qualities and the labels stay the
    untuned render's), and the adapters.

    Raises:
        ValueError: naming ``adapter_parts`` where the pipeline's latents are not the
            generator's z (adapters render z); naming ``photos`` (not one per latent).
    """
    if pipeline.latent_space != "z":
        raise ValueError(f"adapter_parts: adapters render latents in z; this pipeline's live "
                         f"in {pipeline.latent_space!r}")
    if len(photos) != len(result.latents):
        raise ValueError(f"photos: expected {len(result.latents)} aligned faces, got "
                         f"{len(photos)}")
    tune = settings_for(pipeline.extractor, tune)  # no extractor: tuned without its term
    tuned = [tune_adapter(pipeline.generator, z, np.array(photo), tune,
                          extractor=pipeline.extractor, should_stop=should_stop)
             for z, photo in zip(result.latents, photos, strict=True)]
    images = np.stack([adapted_faces(pipeline, result.latents[i:i + 1], a)[0]
                       for i, a in enumerate(tuned)])
    quality = []
    for i, image in enumerate(images):
        mse = float(np.mean((image.astype(np.float64) - photos[i].astype(np.float64)) ** 2))
        quality.append({**result.quality[i], "psnr": round(float(psnr(mse / 255.0**2)), 3)})
    return dataclasses.replace(result, images=images, quality=quality), tuned


def encode_adapter_cost(steps: int, tune: TuneSettings | None) -> float:
    """The face-passes of :func:`encode_with_adapter`."""
    return encode_cost(1, steps) + (0.0 if tune is None else tune_cost(tune))


def _rerender(pipeline: Pipeline, moved: Moved, held: np.ndarray) -> Moved:
    """``moved`` with the latent the closed loops held, rendered with its adapter."""
    after = adapted_faces(pipeline, held[None], moved.adapter)[0]
    return Moved(z=moved.z, moved=np.asarray(held, np.float32), adapter=moved.adapter,
                 before=moved.before, after=after, timings=moved.timings)


@dataclass(frozen=True)
class ModelWork:
    """The model stage's result: the renders and latents (:class:`Moved`), the moved face's
    probabilities (A,) or None, the locks (and references) not held (None: nothing held
    closed-loop), whether the edit was local and held its references, and the attribute
    names of ``probs``."""

    moved: Moved
    probs: np.ndarray | None
    unheld: list[str] | None
    locality: bool
    hold_references: bool
    attributes: list[str]


@dataclass(frozen=True)
class Photo:
    """An upright photo (its whole pixels decoded in the background) and the face located
    in it; ``box`` of the face eyes imply when they were sent (``located.faces`` is then
    None)."""

    upright: UprightPhoto
    located: Located
    box: tuple[float, float, float, float] | None
    timings: dict[str, float]

    @property
    def pixels(self) -> np.ndarray:
        """The whole photo, uint8 (H, W, 3) (waits for its decoding)."""
        return self.upright.pixels

    def answer_faces(self) -> tuple[list[dict[str, Any]], int]:
        """The answer's ``faces`` (``box``, ``score``: :func:`faces_json`) and ``face`` (the
        index edited); with the client's eyes, the one face they imply (score None, index
        0)."""
        located = self.located
        if located.faces is not None:
            return faces_json(located.faces), located.face
        return [{"box": [round(v, 1) for v in self.box or (0.0, 0.0, 0.0, 0.0)],
                 "score": None}], 0


def locate(source: bytes | str | os.PathLike[str], detector: FaceDetector | None, size: int,
           face: int | None = None, eyes: object | None = None,
           max_pixels: int = MAX_PHOTO_PIXELS) -> Photo:
    """Decode the photo upright (checked: format, pixels, corrupt data) and locate its face
    (:func:`tlgan.photos.photo_edit.locate_face`). Faces are searched on a copy decoded
    reduced (a JPEG in the DCT domain, to the detector's ``work_side``); the whole photo is
    then decoded in a background thread, for :func:`compose` (and, where the reduced copy
    holds too little of the face's detail, for aligning it). With ``eyes`` the whole photo
    is decoded at once. ``timings``: ``decode`` (the copy searched), ``find`` (finding and
    aligning).

    Raises:
        ValueError: naming ``image``, ``face`` or ``eyes``.
    """
    t = time.perf_counter()
    photo = UprightPhoto(source, max_pixels, search_side=None if eyes is not None
                         else getattr(detector, "work_side", None))
    decoded = time.perf_counter() - t
    t = time.perf_counter()
    located = locate_face(photo, detector, size, face, eyes)
    box = (None if located.faces is not None
           else implied_box(located.matrix, size, photo.width, photo.height))
    found = time.perf_counter() - t
    photo.decode_in_background()
    return Photo(upright=photo, located=located, box=box,
                 timings={"decode": decoded, "find": found})


def compose(photo: Photo, moved: Moved) -> np.ndarray:
    """The whole photo with the edit composed in (the photo itself when nothing moved)."""
    if moved.after is moved.before:
        return photo.pixels
    return compose_edit(photo.pixels, photo.located.matrix, moved.before, moved.after)


@dataclass(frozen=True)
class PhotoEdited:
    """A photo edit done: the edited photo (uint8 (H, W, 3)), where its face was found, the
    model stage's result and seconds per stage."""

    image: np.ndarray
    photo: Photo
    work: ModelWork
    timings: dict[str, float]


def photo_edit(pipeline: Pipeline, source: bytes | str | os.PathLike[str],
               detector: FaceDetector | None, request: PhotoEditRequest,
               check: LatentCheck | None = None, max_pixels: int = MAX_PHOTO_PIXELS
               ) -> PhotoEdited:
    """The three stages in a row (the CLI's photo edit).

    Raises:
        ValueError: naming the field at fault (see :meth:`PhotoEditRequest.check`).
    """
    request.check(pipeline)
    photo = locate(source, detector, pipeline.resolution, request.face, request.eyes,
                   max_pixels)
    work = request.run_model(pipeline, photo.located.aligned, check)
    t = time.perf_counter()
    image = compose(photo, work.moved)
    timings = {**photo.timings, **work.moved.timings, "compose": time.perf_counter() - t}
    return PhotoEdited(image=image, photo=photo, work=work, timings=timings)
