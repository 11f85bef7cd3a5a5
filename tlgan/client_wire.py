"""What the tlgan client sends and gets back: the answers' dataclasses, request bodies and forms,
and the one check of a reply (:class:`ApiError`). :mod:`tlgan.client` holds the clients."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

LatentLike = Sequence[float] | np.ndarray


class ApiError(Exception):
    """The server answered with an error status.

    Attributes:
        status: the HTTP status code.
        message: the server's ``detail`` (names the offending field for 4xx).
        retry_after: seconds to wait (503 with ``Retry-After``), else None.
    """

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Face:
    """One face: its image, latent and (when labelled) feature probabilities."""

    image: Image.Image
    latent: np.ndarray
    features: dict[str, float] | None = None
    seed: int | None = None
    ratio: float | None = None
    unmet: list[str] | None = None
    unheld: list[str] | None = None
    #: edits only: rendered as a local edit (``latent`` alone renders the global edit; to
    #: reproduce this face, edit the start latent with the same moves again)
    locality: bool | None = None
    #: edits only: the references were held per face
    hold_references: bool | None = None
    #: edits only: the realism check's outcome (critic scores ``start``, ``moved``, ``end``,
    #: ``held``, ``hold``, ``tolerance``); None without a critic
    realism: dict[str, Any] | None = None
    #: generated faces only (``ranked`` or ``refined`` quality): the critic's realism score
    #: of the face, and with ``ranked`` the seed's candidate it is; None otherwise
    score: float | None = None
    candidate: int | None = None


@dataclass(frozen=True)
class EncodedFace(Face):
    """A photo encoded: the reconstruction (``image``, the face ``latent`` renders), and how
    close it is to the photo (``quality``: ``psnr`` in dB, ``embedding_cosine``,
    ``label_agreement``) after ``steps`` refinement steps."""

    quality: dict[str, float | None] = field(default_factory=dict)
    steps: int = 0
    #: every face found in the photo (``box`` [left, top, right, bottom], ``score``), largest
    #: first, and the index of the one encoded
    faces: list[dict[str, Any]] = field(default_factory=list)
    face: int = 0
    #: the photo adapter tuned to the face (None when not asked for): pass it with
    #: ``latent`` to :meth:`Client.edit`, :meth:`Client.interpolate` and
    #: :meth:`Client.edit_photo`; the face's eye centres in the photo (for ``edit_photo``)
    adapter: str | None = None
    eyes: list[list[float]] | None = None


@dataclass(frozen=True)
class EditedPhoto:
    """A photo edited (:meth:`Client.edit_photo`): the whole photo's encoded bytes
    (``data``, in ``format``, ``width`` x ``height``) and ``image``; the faces found
    (``box``, ``score``) and the index edited; the face's own ``latent``, ``adapter`` and
    ``eyes`` (send them back with later edits of the same photo); the edited face's
    ``features``, the locks not held (``unheld``) and seconds per stage (``timings``)."""

    data: bytes
    image: Image.Image
    format: str
    width: int
    height: int
    faces: list[dict[str, Any]]
    face: int
    latent: np.ndarray
    adapter: str | None
    eyes: list[list[float]]
    features: dict[str, float] | None = None
    unheld: list[str] | None = None
    timings: dict[str, float] = field(default_factory=dict)


PhotoLike = str | os.PathLike[str] | bytes | Image.Image


def photo_upload(photo: PhotoLike) -> tuple[str, bytes, str]:
    """(file name, bytes, media type) of a photo: a path or bytes are sent as they are; a PIL
    image is sent as PNG."""
    if isinstance(photo, Image.Image):
        buf = io.BytesIO()
        photo.convert("RGB").save(buf, "PNG")
        return "photo.png", buf.getvalue(), "image/png"
    if isinstance(photo, bytes):
        return "photo", photo, "application/octet-stream"
    path = Path(photo)
    return path.name, path.read_bytes(), "application/octet-stream"


def encode_form(steps: int | None, format: str, size: int | None,
                 with_features: bool, face: int | None = None, adapter: bool = True,
                 adapter_parts: str | None = None) -> dict[str, str]:
    form = {"format": format, "with_features": "true" if with_features else "false"}
    if not adapter:
        form["adapter"] = "false"
    if adapter_parts is not None:
        form["adapter_parts"] = adapter_parts
    if face is not None:
        form["face"] = str(face)
    if steps is not None:
        form["steps"] = str(steps)
    if size is not None:
        form["size"] = str(size)
    return form


def encoded_face_of(d: Mapping[str, Any]) -> EncodedFace:
    return EncodedFace(image=decode_image(d["image"]), latent=np.asarray(d["latent"], np.float32),
                       features=d.get("features"), quality=dict(d.get("quality") or {}),
                       steps=int(d.get("steps", 0)), faces=list(d.get("faces") or []),
                       face=int(d.get("face", 0)), adapter=d.get("adapter"),
                       eyes=d.get("eyes"))


def photo_edit_form(moves: Mapping[str, float] | None, locked: Sequence[str],
                     options: Mapping[str, Any]) -> dict[str, str]:
    """The ``edit`` field of POST /photo/edit: moves, locks and the options given (None:
    left out, the service's default)."""
    edit: dict[str, Any] = {"moves": dict(moves or {}), "locked": list(locked)}
    for name, value in options.items():
        if value is None:
            continue
        edit[name] = latent_list(value) if name == "latent" else (
            np.asarray(value, np.float64).tolist() if name == "eyes" else value)
    return {"edit": json.dumps(edit)}


def edited_photo_of(d: Mapping[str, Any]) -> EditedPhoto:
    data = base64.b64decode(d["image"])
    with Image.open(io.BytesIO(data)) as im:
        image = im.convert("RGB")
    return EditedPhoto(data=data, image=image, format=d["format"], width=int(d["width"]),
                       height=int(d["height"]), faces=list(d["faces"]), face=int(d["face"]),
                       latent=np.asarray(d["latent"], np.float32), adapter=d.get("adapter"),
                       eyes=d["eyes"], features=d.get("features"), unheld=d.get("unheld"),
                       timings=dict(d.get("timings") or {}))


@dataclass(frozen=True)
class Axis:
    """One feature axis of the service's bundle."""

    name: str
    reference: bool
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Axes:
    """The service's axes and attributes."""

    bundle: str | None
    latent_size: int
    axes: list[Axis]
    attributes: list[str]
    #: the generator latent space latents live in ("z", or "w" for axes fitted in w)
    latent_space: str = "z"

    @property
    def names(self) -> list[str]:
        """Axis names, in the bundle's order."""
        return [a.name for a in self.axes]


# -- request building / response parsing (shared by both clients) -------------------------
def latent_list(z: LatentLike) -> list[float]:
    return [float(v) for v in np.asarray(z, dtype=np.float32).ravel()]


def decode_image(b64: str) -> Image.Image:
    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        im.load()
        return im.copy()


def face_of(d: Mapping[str, Any]) -> Face:
    return Face(image=decode_image(d["image"]), latent=np.asarray(d["latent"], dtype=np.float32),
                features=d.get("features"), seed=d.get("seed"), ratio=d.get("ratio"),
                unmet=d.get("unmet"), unheld=d.get("unheld"), locality=d.get("locality"),
                hold_references=d.get("hold_references"),
                realism=d["realism"] if isinstance(d.get("realism"), dict) else None,
                score=d["realism"] if isinstance(d.get("realism"), int | float) else None,
                candidate=d.get("candidate"))


def axes_of(d: Mapping[str, Any]) -> Axes:
    return Axes(bundle=d["bundle"], latent_size=int(d["latent_size"]),
                axes=[Axis(a["name"], bool(a["reference"]), dict(a.get("stats") or {}))
                      for a in d["axes"]],
                attributes=list(d["attributes"]),
                latent_space=str(d.get("latent_space") or "z"))


def generate_body(seed: int | None, count: int, truncation: float,
                   features: Mapping[str, float] | None, format: str, size: int | None,
                   with_features: bool, quality: str | None = None) -> dict[str, Any]:
    body = {"seed": seed, "count": count, "truncation": truncation,
            "features": dict(features) if features is not None else None,
            "format": format, "size": size, "with_features": with_features}
    if quality is not None:  # absent: the service's default
        body["quality"] = quality
    return body


def edit_body(latent: LatentLike, moves: Mapping[str, float] | None, locked: Sequence[str],
               format: str, size: int | None, with_features: bool,
               locality: bool | None = None, hold_references: bool | None = None,
               adapter: str | None = None, realism: bool | None = None) -> dict[str, Any]:
    body = {"latent": latent_list(latent), "moves": dict(moves or {}), "locked": list(locked),
            "format": format, "size": size, "with_features": with_features}
    if adapter is not None:
        body["adapter"] = adapter
    if locality is not None:  # absent: the service's default
        body["locality"] = locality
    if hold_references is not None:
        body["hold_references"] = hold_references
    if realism is not None:
        body["realism"] = realism
    return body


def interpolate_body(a: LatentLike, b: LatentLike, ratio: float | None, steps: int | None,
                      method: str, format: str, size: int | None,
                      with_features: bool, adapter: str | None = None) -> dict[str, Any]:
    if (ratio is None) == (steps is None):
        raise ValueError("ratio: give exactly one of ratio or steps")
    body: dict[str, Any] = {"latent_a": latent_list(a), "latent_b": latent_list(b),
                            "method": method, "format": format, "size": size,
                            "with_features": with_features}
    body["ratio" if ratio is not None else "steps"] = ratio if ratio is not None else steps
    if adapter is not None:
        body["adapter"] = adapter
    return body


def checked(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        try:
            data = resp.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and "detail" in data:
            message = str(data["detail"])
        else:
            message = resp.text.strip() or resp.reason_phrase
        retry = resp.headers.get("retry-after")
        raise ApiError(resp.status_code, message,
                       float(retry) if retry and retry.isdigit() else None)
    return resp.json()


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"X-API-Key": api_key} if api_key else {}
