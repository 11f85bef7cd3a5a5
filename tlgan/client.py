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

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from tlgan.client_wire import (
    ApiError,
    Axes,
    Axis,
    EditedPhoto,
    EncodedFace,
    Face,
    LatentLike,
    PhotoLike,
    auth_headers,
    axes_of,
    checked,
    edit_body,
    edited_photo_of,
    encode_form,
    encoded_face_of,
    face_of,
    generate_body,
    interpolate_body,
    photo_edit_form,
    photo_upload,
)
from tlgan.latents import DEFAULT_TRUNCATION

__all__ = ["ApiError", "AsyncClient", "Axes", "Axis", "Client", "EditedPhoto", "EncodedFace",
           "Face"]


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
        self._http = httpx.Client(base_url=base_url, headers=auth_headers(api_key),
                                  timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return checked(self._http.post(path, json=body))

    def _get(self, path: str) -> Any:
        return checked(self._http.get(path))

    def generate(self, seed: int | None = None, count: int = 1,
                 truncation: float = DEFAULT_TRUNCATION,
                 features: Mapping[str, float] | None = None, format: str = "png",
                 size: int | None = None, with_features: bool = True,
                 quality: str | None = None) -> list[Face]:
        """Faces for seeds ``seed .. seed+count-1`` (random seed if None).

        With ``features`` ({attribute: target probability}), faces are moved along the axes
        toward the targets; ``Face.unmet`` lists the attributes that could not be reached.
        ``quality``: ``raw``, ``ranked`` or ``refined`` (None: the service's default); with
        ``ranked`` or ``refined`` ``Face.score`` is the critic's realism score.
        """
        body = generate_body(seed, count, truncation, features, format, size, with_features,
                             quality)
        return [face_of(f) for f in self._post("/generate", body)["faces"]]

    def edit(self, latent: LatentLike, moves: Mapping[str, float] | None = None,
             locked: Sequence[str] = (), format: str = "png", size: int | None = None,
             with_features: bool = True, locality: bool | None = None,
             hold_references: bool | None = None, adapter: str | None = None,
             realism: bool | None = None) -> Face:
        """Move ``latent`` by ``moves`` (distance per axis) keeping ``locked`` axes fixed
        (per face, closed loop, when the service has an extractor; ``Face.unheld`` lists
        the locks it could not hold). ``locality``: keep each moved axis's change in its
        region (None: the service's default, on when its bundle ships masks); when
        ``Face.locality`` is true, ``Face.latent`` alone renders the global edit, so to
        reproduce the face keep the start latent and edit it again with the same moves.
        ``hold_references``: hold gender and age per face when the edit does not move them
        (None: the service's default, on with an extractor). ``adapter``: a photo adapter
        (from :meth:`encode` or :meth:`edit_photo`, with its latent) to render with.
        ``realism``: hold the edited face's realism (None: the service's default, off);
        ``Face.realism`` gives the critic's scores and whether the face stayed realistic."""
        body = edit_body(latent, moves, locked, format, size, with_features, locality,
                          hold_references, adapter, realism)
        return face_of(self._post("/edit", body))

    def interpolate(self, latent_a: LatentLike, latent_b: LatentLike, *,
                    ratio: float | None = None, steps: int | None = None,
                    method: str = "slerp", format: str = "png", size: int | None = None,
                    with_features: bool = True, adapter: str | None = None) -> list[Face]:
        """Faces between two latents at ``ratio`` or at ``steps`` ratios (give one);
        ``adapter``: a photo adapter to render every face with."""
        body = interpolate_body(latent_a, latent_b, ratio, steps, method, format, size,
                                 with_features, adapter)
        return [face_of(f) for f in self._post("/interpolate", body)["faces"]]

    def encode(self, photo: PhotoLike, steps: int | None = None, format: str = "png",
               size: int | None = None, with_features: bool = True,
               face: int | None = None, *, adapter: bool = True,
               adapter_parts: str | None = None) -> EncodedFace:
        """Encode a photo (a path, the file's bytes, or a PIL image) into a latent that
        :meth:`edit` and :meth:`interpolate` take. ``steps``: refinement steps after the
        encoder (None: the service's default). The service finds the faces (answered in
        ``faces``, largest first) and encodes face ``face`` (None: the largest).
        ``adapter``: tune a photo adapter (the answer's ``adapter``, to pass to :meth:`edit`
        with the latent); ``adapter_parts``: what it tunes, ``"bn+last"`` or ``"bn"``
        (BatchNorm only: smoother when shown enlarged; None: the service's default)."""
        resp = self._http.post("/encode", files={"image": photo_upload(photo)},
                               data=encode_form(steps, format, size, with_features, face,
                                                adapter, adapter_parts))
        return encoded_face_of(checked(resp))

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
        resp = self._http.post("/photo/edit", files={"image": photo_upload(photo)},
                               data=photo_edit_form(moves, locked, options))
        return edited_photo_of(checked(resp))

    def axes(self) -> Axes:
        """The service's axes (names, references, fit statistics) and attributes."""
        return axes_of(self._get("/axes"))

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
        self._http = httpx.AsyncClient(base_url=base_url, headers=auth_headers(api_key),
                                       timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        return checked(await self._http.post(path, json=body))

    async def generate(self, seed: int | None = None, count: int = 1,
                       truncation: float = DEFAULT_TRUNCATION,
                       features: Mapping[str, float] | None = None, format: str = "png",
                       size: int | None = None, with_features: bool = True,
                       quality: str | None = None) -> list[Face]:
        """See :meth:`Client.generate`."""
        body = generate_body(seed, count, truncation, features, format, size, with_features,
                             quality)
        return [face_of(f) for f in (await self._post("/generate", body))["faces"]]

    async def edit(self, latent: LatentLike, moves: Mapping[str, float] | None = None,
                   locked: Sequence[str] = (), format: str = "png", size: int | None = None,
                   with_features: bool = True, locality: bool | None = None,
                   hold_references: bool | None = None, adapter: str | None = None,
                   realism: bool | None = None) -> Face:
        """See :meth:`Client.edit`."""
        body = edit_body(latent, moves, locked, format, size, with_features, locality,
                          hold_references, adapter, realism)
        return face_of(await self._post("/edit", body))

    async def interpolate(self, latent_a: LatentLike, latent_b: LatentLike, *,
                          ratio: float | None = None, steps: int | None = None,
                          method: str = "slerp", format: str = "png", size: int | None = None,
                          with_features: bool = True, adapter: str | None = None
                          ) -> list[Face]:
        """See :meth:`Client.interpolate`."""
        body = interpolate_body(latent_a, latent_b, ratio, steps, method, format, size,
                                 with_features, adapter)
        return [face_of(f) for f in (await self._post("/interpolate", body))["faces"]]

    async def encode(self, photo: PhotoLike, steps: int | None = None, format: str = "png",
                     size: int | None = None, with_features: bool = True,
                     face: int | None = None, *, adapter: bool = True,
                     adapter_parts: str | None = None) -> EncodedFace:
        """See :meth:`Client.encode`."""
        resp = await self._http.post("/encode", files={"image": photo_upload(photo)},
                                     data=encode_form(steps, format, size, with_features,
                                                       face, adapter, adapter_parts))
        return encoded_face_of(checked(resp))

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
        resp = await self._http.post("/photo/edit", files={"image": photo_upload(photo)},
                                     data=photo_edit_form(moves, locked, options))
        return edited_photo_of(checked(resp))

    async def axes(self) -> Axes:
        """See :meth:`Client.axes`."""
        return axes_of(checked(await self._http.get("/axes")))

    async def generators(self) -> dict[str, Any]:
        """See :meth:`Client.generators`."""
        result: dict[str, Any] = checked(await self._http.get("/generators"))
        return result

    async def ready(self) -> bool:
        """See :meth:`Client.ready`."""
        return (await self._http.get("/readyz")).status_code == 200
