"""A small Python client for the tlgan REST API (``tlgan serve``).

Example::

    from tlgan.client import Client

    with Client("http://127.0.0.1:8000") as api:
        face = api.generate(seed=42)[0]
        face.image.save("face.png")
        smiling = api.edit(face.latent, moves={"Smiling": 2.0}, locked=["Male"])
        print(smiling.features["Smiling"])
        me = api.encode("photo.jpg")  # a face photo -> a latent, then edit it the same way
        print(me.quality["psnr"]); api.edit(me.latent, moves={"Smiling": 2.0}).image.show()
        shot = api.edit_photo("group.jpg", moves={"Smiling": 1.5})  # the whole photo, edited
        Path("edited.jpg").write_bytes(shot.data)

Every method returns small dataclasses holding PIL images and numpy latents, and raises
:class:`ApiError` (with the HTTP status and the server's one-line message) on a 4xx/5xx.
:class:`AsyncClient` has the same methods as coroutines.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from tlgan.latents import DEFAULT_TRUNCATION

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


def _photo_upload(photo: PhotoLike) -> tuple[str, bytes, str]:
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


def _encode_form(steps: int | None, format: str, size: int | None,
                 with_features: bool, face: int | None = None) -> dict[str, str]:
    form = {"format": format, "with_features": "true" if with_features else "false"}
    if face is not None:
        form["face"] = str(face)
    if steps is not None:
        form["steps"] = str(steps)
    if size is not None:
        form["size"] = str(size)
    return form


def _encoded(d: Mapping[str, Any]) -> EncodedFace:
    return EncodedFace(image=_image(d["image"]), latent=np.asarray(d["latent"], np.float32),
                       features=d.get("features"), quality=dict(d.get("quality") or {}),
                       steps=int(d.get("steps", 0)), faces=list(d.get("faces") or []),
                       face=int(d.get("face", 0)), adapter=d.get("adapter"),
                       eyes=d.get("eyes"))


def _photo_edit_form(moves: Mapping[str, float] | None, locked: Sequence[str],
                     options: Mapping[str, Any]) -> dict[str, str]:
    """The ``edit`` field of POST /photo/edit: moves, locks and the options given (None:
    left out, the service's default)."""
    edit: dict[str, Any] = {"moves": dict(moves or {}), "locked": list(locked)}
    for name, value in options.items():
        if value is None:
            continue
        edit[name] = _latent(value) if name == "latent" else (
            np.asarray(value, np.float64).tolist() if name == "eyes" else value)
    return {"edit": json.dumps(edit)}


def _edited_photo(d: Mapping[str, Any]) -> EditedPhoto:
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
def _latent(z: LatentLike) -> list[float]:
    return [float(v) for v in np.asarray(z, dtype=np.float32).ravel()]


def _image(b64: str) -> Image.Image:
    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        im.load()
        return im.copy()


def _face(d: Mapping[str, Any]) -> Face:
    return Face(image=_image(d["image"]), latent=np.asarray(d["latent"], dtype=np.float32),
                features=d.get("features"), seed=d.get("seed"), ratio=d.get("ratio"),
                unmet=d.get("unmet"), unheld=d.get("unheld"), locality=d.get("locality"),
                hold_references=d.get("hold_references"))


def _axes(d: Mapping[str, Any]) -> Axes:
    return Axes(bundle=d["bundle"], latent_size=int(d["latent_size"]),
                axes=[Axis(a["name"], bool(a["reference"]), dict(a.get("stats") or {}))
                      for a in d["axes"]],
                attributes=list(d["attributes"]),
                latent_space=str(d.get("latent_space") or "z"))


def _generate_body(seed: int | None, count: int, truncation: float,
                   features: Mapping[str, float] | None, format: str, size: int | None,
                   with_features: bool) -> dict[str, Any]:
    return {"seed": seed, "count": count, "truncation": truncation,
            "features": dict(features) if features is not None else None,
            "format": format, "size": size, "with_features": with_features}


def _edit_body(latent: LatentLike, moves: Mapping[str, float] | None, locked: Sequence[str],
               format: str, size: int | None, with_features: bool,
               locality: bool | None = None, hold_references: bool | None = None,
               adapter: str | None = None) -> dict[str, Any]:
    body = {"latent": _latent(latent), "moves": dict(moves or {}), "locked": list(locked),
            "format": format, "size": size, "with_features": with_features}
    if adapter is not None:
        body["adapter"] = adapter
    if locality is not None:  # absent: the service's default
        body["locality"] = locality
    if hold_references is not None:
        body["hold_references"] = hold_references
    return body


def _interpolate_body(a: LatentLike, b: LatentLike, ratio: float | None, steps: int | None,
                      method: str, format: str, size: int | None,
                      with_features: bool, adapter: str | None = None) -> dict[str, Any]:
    if (ratio is None) == (steps is None):
        raise ValueError("ratio: give exactly one of ratio or steps")
    body: dict[str, Any] = {"latent_a": _latent(a), "latent_b": _latent(b), "method": method,
                            "format": format, "size": size, "with_features": with_features}
    body["ratio" if ratio is not None else "steps"] = ratio if ratio is not None else steps
    if adapter is not None:
        body["adapter"] = adapter
    return body


def _check(resp: httpx.Response) -> Any:
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


def _headers(api_key: str | None) -> dict[str, str]:
    return {"X-API-Key": api_key} if api_key else {}


class Client:
    """Synchronous client (httpx).

    Args:
        base_url: e.g. ``"http://127.0.0.1:8000"``.
        api_key: sent as ``X-API-Key`` when given.
        timeout: seconds per request.
        transport: optional httpx transport (e.g. ``httpx.MockTransport`` in tests).
    """

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key),
                                  timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return _check(self._http.post(path, json=body))

    def _get(self, path: str) -> Any:
        return _check(self._http.get(path))

    def generate(self, seed: int | None = None, count: int = 1,
                 truncation: float = DEFAULT_TRUNCATION,
                 features: Mapping[str, float] | None = None, format: str = "png",
                 size: int | None = None, with_features: bool = True) -> list[Face]:
        """Faces for seeds ``seed .. seed+count-1`` (random seed if None).

        With ``features`` ({attribute: target probability}), faces are moved along the axes
        toward the targets; ``Face.unmet`` lists the attributes that could not be reached.
        """
        body = _generate_body(seed, count, truncation, features, format, size, with_features)
        return [_face(f) for f in self._post("/generate", body)["faces"]]

    def edit(self, latent: LatentLike, moves: Mapping[str, float] | None = None,
             locked: Sequence[str] = (), format: str = "png", size: int | None = None,
             with_features: bool = True, locality: bool | None = None,
             hold_references: bool | None = None, adapter: str | None = None) -> Face:
        """Move ``latent`` by ``moves`` (distance per axis) keeping ``locked`` axes fixed
        (per face, closed loop, when the service has an extractor; ``Face.unheld`` lists
        the locks it could not hold). ``locality``: keep each moved axis's change in its
        region (None: the service's default, on when its bundle ships masks); when
        ``Face.locality`` is true, ``Face.latent`` alone renders the global edit, so to
        reproduce the face keep the start latent and edit it again with the same moves.
        ``hold_references``: hold gender and age per face when the edit does not move them
        (None: the service's default, on with an extractor). ``adapter``: a photo adapter
        (from :meth:`encode` or :meth:`edit_photo`, with its latent) to render with."""
        body = _edit_body(latent, moves, locked, format, size, with_features, locality,
                          hold_references, adapter)
        return _face(self._post("/edit", body))

    def interpolate(self, latent_a: LatentLike, latent_b: LatentLike, *,
                    ratio: float | None = None, steps: int | None = None,
                    method: str = "slerp", format: str = "png", size: int | None = None,
                    with_features: bool = True, adapter: str | None = None) -> list[Face]:
        """Faces between two latents at ``ratio`` or at ``steps`` ratios (give one);
        ``adapter``: a photo adapter to render every face with."""
        body = _interpolate_body(latent_a, latent_b, ratio, steps, method, format, size,
                                 with_features, adapter)
        return [_face(f) for f in self._post("/interpolate", body)["faces"]]

    def encode(self, photo: PhotoLike, steps: int | None = None, format: str = "png",
               size: int | None = None, with_features: bool = True,
               face: int | None = None) -> EncodedFace:
        """Encode a photo (a path, the file's bytes, or a PIL image) into a latent that
        :meth:`edit` and :meth:`interpolate` take. ``steps``: refinement steps after the
        encoder (None: the service's default). The service finds the faces (answered in
        ``faces``, largest first) and encodes face ``face`` (None: the largest)."""
        resp = self._http.post("/encode", files={"image": _photo_upload(photo)},
                               data=_encode_form(steps, format, size, with_features, face))
        return _encoded(_check(resp))

    def edit_photo(self, photo: PhotoLike, moves: Mapping[str, float] | None = None,
                   locked: Sequence[str] = (), *, face: int | None = None,
                   latent: LatentLike | None = None, adapter: str | None = None,
                   eyes: Sequence[Sequence[float]] | None = None, format: str | None = None,
                   quality: int | None = None, locality: bool | None = None,
                   hold_references: bool | None = None,
                   with_features: bool = True) -> EditedPhoto:
        """Edit face ``face`` (None: the largest) of a whole photo (a path, bytes or a PIL
        image) and get the whole photo back, edited, at its own resolution. Later edits of
        the same photo pass the answer's ``latent``, ``adapter`` and ``eyes`` (skipping
        finding, encoding and tuning); ``format`` None: the photo's own."""
        options = {"face": face, "latent": latent, "adapter": adapter, "eyes": eyes,
                   "format": format, "quality": quality, "locality": locality,
                   "hold_references": hold_references, "with_features": with_features}
        resp = self._http.post("/photo/edit", files={"image": _photo_upload(photo)},
                               data=_photo_edit_form(moves, locked, options))
        return _edited_photo(_check(resp))

    def axes(self) -> Axes:
        """The service's axes (names, references, fit statistics) and attributes."""
        return _axes(self._get("/axes"))

    def generators(self) -> dict[str, Any]:
        """Registered generators and the loaded one (raw JSON)."""
        result: dict[str, Any] = self._get("/generators")
        return result

    def ready(self) -> bool:
        """Whether the service has loaded its models."""
        return self._http.get("/readyz").status_code == 200

    def wait_ready(self, timeout: float = 120.0, *, alive: Callable[[], bool] | None = None,
                   interval: float = 0.2) -> bool:
        """Poll ``GET /readyz`` until it answers 200 (True). False once ``timeout`` seconds
        have passed, or as soon as ``alive()`` (e.g. "the server's process still runs") is
        False. Refused connections and errors count as not ready yet (a server binding its
        port). For scripts and harnesses that start a service and wait for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                return False
            try:
                if self.ready():
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(interval)
        return False


class AsyncClient:
    """Asynchronous client with the same methods as :class:`Client` (coroutines)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, headers=_headers(api_key),
                                       timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        return _check(await self._http.post(path, json=body))

    async def generate(self, seed: int | None = None, count: int = 1,
                       truncation: float = DEFAULT_TRUNCATION,
                       features: Mapping[str, float] | None = None, format: str = "png",
                       size: int | None = None, with_features: bool = True) -> list[Face]:
        """See :meth:`Client.generate`."""
        body = _generate_body(seed, count, truncation, features, format, size, with_features)
        return [_face(f) for f in (await self._post("/generate", body))["faces"]]

    async def edit(self, latent: LatentLike, moves: Mapping[str, float] | None = None,
                   locked: Sequence[str] = (), format: str = "png", size: int | None = None,
                   with_features: bool = True, locality: bool | None = None,
                   hold_references: bool | None = None, adapter: str | None = None) -> Face:
        """See :meth:`Client.edit`."""
        body = _edit_body(latent, moves, locked, format, size, with_features, locality,
                          hold_references, adapter)
        return _face(await self._post("/edit", body))

    async def interpolate(self, latent_a: LatentLike, latent_b: LatentLike, *,
                          ratio: float | None = None, steps: int | None = None,
                          method: str = "slerp", format: str = "png", size: int | None = None,
                          with_features: bool = True, adapter: str | None = None
                          ) -> list[Face]:
        """See :meth:`Client.interpolate`."""
        body = _interpolate_body(latent_a, latent_b, ratio, steps, method, format, size,
                                 with_features, adapter)
        return [_face(f) for f in (await self._post("/interpolate", body))["faces"]]

    async def encode(self, photo: PhotoLike, steps: int | None = None, format: str = "png",
                     size: int | None = None, with_features: bool = True,
                     face: int | None = None) -> EncodedFace:
        """See :meth:`Client.encode`."""
        resp = await self._http.post("/encode", files={"image": _photo_upload(photo)},
                                     data=_encode_form(steps, format, size, with_features,
                                                       face))
        return _encoded(_check(resp))

    async def edit_photo(self, photo: PhotoLike, moves: Mapping[str, float] | None = None,
                         locked: Sequence[str] = (), *, face: int | None = None,
                         latent: LatentLike | None = None, adapter: str | None = None,
                         eyes: Sequence[Sequence[float]] | None = None,
                         format: str | None = None, quality: int | None = None,
                         locality: bool | None = None, hold_references: bool | None = None,
                         with_features: bool = True) -> EditedPhoto:
        """See :meth:`Client.edit_photo`."""
        options = {"face": face, "latent": latent, "adapter": adapter, "eyes": eyes,
                   "format": format, "quality": quality, "locality": locality,
                   "hold_references": hold_references, "with_features": with_features}
        resp = await self._http.post("/photo/edit", files={"image": _photo_upload(photo)},
                                     data=_photo_edit_form(moves, locked, options))
        return _edited_photo(_check(resp))

    async def axes(self) -> Axes:
        """See :meth:`Client.axes`."""
        return _axes(_check(await self._http.get("/axes")))

    async def generators(self) -> dict[str, Any]:
        """See :meth:`Client.generators`."""
        result: dict[str, Any] = _check(await self._http.get("/generators"))
        return result

    async def ready(self) -> bool:
        """See :meth:`Client.ready`."""
        return (await self._http.get("/readyz")).status_code == 200
