"""Photo adapters: a small part of the generator tuned to one photo (pivotal tuning).

The encoder and refinement find a latent z whose face resembles the photo; the 64 px DCGAN
cannot render the person from any z. Pivotal tuning (PTI) keeps that z fixed and tunes a few
of the generator's parameters so that G(z) becomes the photo, with a regularizer that keeps
the tuned generator close to the untuned one around z (renders of nearby latents z + d stay
where they were), so that edits along the axes keep working.

The tuned part (``parts``; layer k is the k-th transposed convolution and its BatchNorm):

- ``"bn"``: every BatchNorm scale and bias (1,920 numbers for the default generator);
- ``"bnK"`` (K = 2, 3, 4): the BatchNorm scales and biases of layer K onward (``"bn2"``: 896,
  ``"bn3"``: 384, ``"bn4"``: 128);
- ``"last"``: the last transposed convolution's weights (3,072);
- ``"bn+last"``, ``"bnK+last"``: both (4,992 for ``"bn+last"``, 3,968 for ``"bn2+last"``).

Everything before the first tuned parameter is the untuned generator's, so tuning computes it
once per latent and runs only the rest of the network each step (``"bn2+last"`` skips the
first two transposed convolutions, forward and backward: a third fewer operations per step
than ``"bn+last"``).

An :class:`Adapter` holds the *changes* (deltas) of those parameters, rounded to float16, in
the generator's parameter order. It travels with the latent as a compact string
(:func:`encode_adapter`): ``tla1.<parts>.<sha256 prefix>.<base64url of float16 little-endian
deltas>``, validated as untrusted input by :func:`decode_adapter`.

Rendering with an adapter (:func:`render_adapted`) never touches the shared generator: the
forward pass is written out functionally with the tuned tensors in place of the module's
(``torch.func.functional_call`` is not used on purpose: it swaps the tensors *inside* the
module for the duration of the call, which other threads rendering with the same module
would see).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tlgan.encoders.losses import embedding_distance, pixel_mse
from tlgan.generators.base import FaceGenerator
from tlgan_base.domain_errors import Stopped
from tlgan_base.trainloop import cosine_schedule

#: format version written and accepted
FORMAT = "tla1"
#: the tuned parts accepted, and their short codes in the string
PARTS = {"bn": "b", "last": "l", "bn+last": "bl", "bn2": "b2", "bn2+last": "b2l",
         "bn3": "b3", "bn3+last": "b3l", "bn4": "b4", "bn4+last": "b4l"}
#: learning-rate schedules of :class:`TuneSettings`
SCHEDULES = ("constant", "cosine")
#: the longest adapter string accepted (64 KiB)
MAX_ENCODED = 65536
#: the largest change of any tuned parameter (tuning clamps to it; decoding refuses more)
MAX_DELTA = 4.0
#: hex characters of the generator's sha256 that an adapter carries
SHA_PREFIX = 16

#: defaults chosen on evidence (docs/photos.md, "Reconstructions that are the person"): 120
#: Adam steps at lr 0.02 on the BatchNorms and a quarter of it on the last convolution, the
#: nearby latent held every third step, reach 28.42 dB, label agreement 0.970 and edits 0.82 /
#: 0.89 as far, where 150 steps at lr 0.01 holding it every step reached 28.38 dB, 0.968 and
#: 0.79 / 0.86, in about 0.7 of the time (from the encoder alone, 24 test crops)
DEFAULT_PARTS = "bn+last"
DEFAULT_STEPS = 120
DEFAULT_LR = 0.02
#: the last convolution's learning rate over DEFAULT_LR (its weights are about 0.03, the
#: BatchNorm scales about 0.9)
DEFAULT_LR_LAST = 0.25
#: nearby latents z + radius * u (u random unit directions; one holds edits as well as two)...
DEFAULT_NEAR = 1
DEFAULT_RADIUS = 3.0
#: ...whose pixel distance from the untuned generator's renders is weighted by this...
DEFAULT_NEAR_WEIGHT = 0.1
#: ...rendered every this many steps (a batch of 2 on those, 1 between)
DEFAULT_NEAR_EVERY = 3
#: cosine decay lost 1.6-1.7 dB at 150 steps (8 test crops; the tuning is far from converged)
DEFAULT_SCHEDULE = "constant"
#: updating layer 1's BatchNorm every 2nd or 3rd step lost 0.8-1.1 dB (8 test crops)
DEFAULT_FIRST_EVERY = 1
#: the extractor's embedding distance at this weight in the last DEFAULT_TERMS_LAST steps only
#: (8 passes of the extractor, about 0.1 s): label agreement 0.970 -> 0.992 at 28.30 dB
#: (28.42 without), edits 0.83 / 0.89, and an independent judge's P(male) and age no further
#: from the photo's (24 test crops; the photo encoder's features in its place did not lift
#: label agreement)
DEFAULT_PERCEPTUAL = 0.005
DEFAULT_TERMS_LAST = 8

_TEXT = re.compile(r"^[A-Za-z0-9_\-.=]*$")


@dataclass(frozen=True)
class Adapter:
    """Changes to ``parts`` of the generator whose sha256 starts with ``sha256`` (a prefix):
    ``deltas`` float32 (P,) in the order of :func:`adapter_layout`, exactly representable in
    float16."""

    parts: str
    sha256: str
    deltas: np.ndarray

    @property
    def size(self) -> int:
        return int(self.deltas.size)


def _main(generator: FaceGenerator) -> nn.Sequential:
    main = getattr(generator.module, "main", None)
    if not isinstance(main, nn.Sequential) or generator.spatial_latent:
        raise ValueError(f"adapter: generator {generator.name!r} does not take photo adapters "
                         "(only the DCGAN architecture does)")
    return main


def _split_parts(parts: str) -> tuple[int | None, bool]:
    """``parts`` -> (the first layer whose BatchNorm is tuned, None for none; whether the last
    convolution is)."""
    if parts not in PARTS:
        raise ValueError(f"parts: one of {', '.join(PARTS)}, got {parts!r}")
    bn = parts.split("+")[0]
    first = None if bn == "last" else int(bn[2:] or 1)
    return first, parts.endswith("last")


def adapter_layout(generator: FaceGenerator, parts: str = DEFAULT_PARTS
                   ) -> list[tuple[str, tuple[int, ...]]]:
    """The tuned parameters of ``parts``: (name in the module's state dict, shape), in the
    module's order.

    Raises:
        ValueError: naming ``parts`` (unknown), or ``adapter`` (the generator takes none).
    """
    first, last = _split_parts(parts)
    main = _main(generator)
    layers = list(main)
    convs = [i for i, m in enumerate(layers) if isinstance(m, nn.ConvTranspose2d)]
    out: list[tuple[str, tuple[int, ...]]] = []
    for i, m in enumerate(layers):
        prefix = f"main.{i}."
        layer = sum(c < i for c in convs)  # the BatchNorm after the k-th convolution: layer k
        if (first is not None and layer >= first and isinstance(m, nn.BatchNorm2d)
                and m.affine):
            out += [(prefix + "weight", tuple(m.weight.shape)),
                    (prefix + "bias", tuple(m.bias.shape))]
        if last and convs and i == convs[-1]:
            assert isinstance(m, nn.ConvTranspose2d)
            out.append((prefix + "weight", tuple(m.weight.shape)))
    return out


def adapter_size(generator: FaceGenerator, parts: str = DEFAULT_PARTS) -> int:
    """How many numbers an adapter of ``parts`` holds for ``generator``."""
    return sum(math.prod(s) for _, s in adapter_layout(generator, parts))


#: a transposed convolution whose input is at most this many pixels on a side is computed
#: as a matrix product and a fold while tuning (:func:`_transposed_as_product`)
SMALL_INPUT = 4


def _transposed_as_product(x: torch.Tensor, w: torch.Tensor, m: nn.ConvTranspose2d
                           ) -> torch.Tensor:
    """``m``'s transposed convolution (no bias) of ``x`` (N, C, H, W) with weights ``w``, as a
    matrix product of each input pixel with the kernel and a fold of the products into the
    output (col2im). Equal to ``F.conv_transpose2d`` within float rounding (about 1e-6) and,
    for the generator's 4x4-input layer, about a quarter faster forward and backward on a CPU
    (the library's convolution runs a 4x4 input far below its speed on larger ones)."""
    _, _, h, wd = x.shape
    kh, kw = m.kernel_size
    (sh, sw) = m.stride
    ph, pw = (int(v) for v in m.padding)  # a tuple of ints on a ConvTranspose2d
    out = ((h - 1) * sh - 2 * ph + kh + m.output_padding[0],
           (wd - 1) * sw - 2 * pw + kw + m.output_padding[1])
    cols = (x.flatten(2).transpose(1, 2) @ w.flatten(1)).transpose(1, 2)
    return F.fold(cols, out, (kh, kw), padding=(ph, pw), stride=(sh, sw))


def _forward(main: nn.Sequential, z: torch.Tensor, params: dict[str, torch.Tensor],
             start: int = 0, stop: int | None = None, *, exact: bool = True) -> torch.Tensor:
    """The DCGAN's forward (eval mode) with ``params`` (name -> tensor) in place of the
    module's own, the module untouched. z (N, L) -> (N, C, R, R) in the module's range.

    With ``start`` / ``stop``: only layers ``main[start:stop]``, ``z`` being the output of
    ``main[:start]`` (the same operations as the whole forward, so the same numbers).
    ``exact=False`` (the tuning's steps): a transposed convolution of a small input is
    :func:`_transposed_as_product` (the same within float rounding, faster); renders keep
    the module's own operations."""

    def p(name: str, own: torch.Tensor | None) -> torch.Tensor | None:
        return params.get(name, own)

    x = z
    for i, m in enumerate(main):
        if i < start or (stop is not None and i >= stop):
            continue
        pre = f"main.{i}."
        if isinstance(m, nn.ConvTranspose2d):
            w = p(pre + "weight", m.weight)
            assert w is not None
            if i == 0 and x.dim() == 2:  # a 1x1 input: the module's batch-invariant product
                flat = torch.bmm(x[:, None, :], w.flatten(1).expand(x.shape[0], -1, -1))
                x = flat.squeeze(1).view(x.shape[0], m.out_channels, *m.kernel_size)
                if m.bias is not None:
                    x = x + p(pre + "bias", m.bias)[None, :, None, None]  # type: ignore[index]
                continue
            if (not exact and m.groups == 1 and m.dilation == (1, 1) and m.bias is None
                    and max(x.shape[-2:]) <= SMALL_INPUT):
                x = _transposed_as_product(x, w, m)
                continue
            x = F.conv_transpose2d(x, w, p(pre + "bias", m.bias), m.stride, m.padding,  # type: ignore[arg-type]
                                   m.output_padding, m.groups, m.dilation)
        elif isinstance(m, nn.BatchNorm2d):
            x = F.batch_norm(x, m.running_mean, m.running_var, p(pre + "weight", m.weight),
                             p(pre + "bias", m.bias), False, 0.0, m.eps)
        elif isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid)):
            x = m(x)  # no parameters, no state
        else:
            raise ValueError(f"adapter: the generator has a {type(m).__name__} layer, which "
                             "photo adapters do not support")
    return x


def _frozen_until(layout: list[tuple[str, tuple[int, ...]]]) -> int:
    """The index in ``main`` of the first tuned layer: everything before it is the untuned
    generator's."""
    return min(int(name.split(".")[1]) for name, _ in layout)


def _base(main: nn.Sequential, layout: list[tuple[str, tuple[int, ...]]]
          ) -> list[torch.Tensor]:
    state = dict(main.named_parameters(prefix="main"))
    return [state[name].detach() for name, _ in layout]


def _params(layout: list[tuple[str, tuple[int, ...]]], base: list[torch.Tensor],
            deltas: torch.Tensor) -> dict[str, torch.Tensor]:
    out, at = {}, 0
    for (name, shape), b in zip(layout, base, strict=True):
        n = math.prod(shape)
        out[name] = b + deltas[at:at + n].view(shape)
        at += n
    return out


def render_adapted(generator: FaceGenerator, z: np.ndarray | torch.Tensor,
                   adapter: Adapter | None) -> torch.Tensor:
    """Render latents z (N, L) with ``adapter`` (None: the generator as it is) to float
    images (N, 3, R, R) in [0, 1], without changing the generator (thread-safe).

    Raises:
        ValueError: bad latents (named ``z``) or an adapter that is not for this generator
            (named ``adapter``).
    """
    if adapter is None:
        return generator.render_tensor(z)
    check_adapter(adapter, generator)
    generator.check_latents(z)
    main = _main(generator)
    layout = adapter_layout(generator, adapter.parts)
    dev = generator.device
    with torch.inference_mode():
        d = torch.from_numpy(np.asarray(adapter.deltas, np.float32)).to(dev)
        zt = torch.as_tensor(z, dtype=torch.float32).to(dev)
        out = _forward(main, zt, _params(layout, _base(main, layout), d))
        lo, hi = generator.value_range
        return ((out - lo) / (hi - lo)).clamp_(0.0, 1.0).float()


def check_adapter(adapter: Adapter, generator: FaceGenerator) -> None:
    """Raise ValueError naming ``adapter`` unless it fits ``generator`` (sha256 prefix,
    length of its parts' layout, finite, within :data:`MAX_DELTA`)."""
    if not generator.sha256.startswith(adapter.sha256) or len(adapter.sha256) < 8:
        raise ValueError(f"adapter: made for another generator (sha256 {adapter.sha256[:16]}..., "
                         f"this one is {generator.sha256[:16]}...)")
    n = adapter_size(generator, adapter.parts)
    d = np.asarray(adapter.deltas)
    if d.shape != (n,):
        raise ValueError(f"adapter: expected {n} numbers for parts {adapter.parts!r} of "
                         f"generator {generator.name!r}, got {d.size}")
    if not np.isfinite(d).all():
        raise ValueError("adapter: contains NaN or infinity")
    if np.abs(d).max(initial=0.0) > MAX_DELTA:
        raise ValueError(f"adapter: a change of {float(np.abs(d).max()):.3g} exceeds the "
                         f"bound {MAX_DELTA:g}")


def encode_adapter(adapter: Adapter) -> str:
    """The adapter as a compact ASCII string (see the module's docstring)."""
    raw = np.asarray(adapter.deltas, dtype="<f2").tobytes()
    body = base64.urlsafe_b64encode(raw).decode("ascii")
    return f"{FORMAT}.{PARTS[adapter.parts]}.{adapter.sha256[:SHA_PREFIX]}.{body}"


def decode_adapter(text: object, generator: FaceGenerator) -> Adapter:
    """An adapter string from a client, checked for ``generator``.

    Raises:
        ValueError: naming ``adapter``: not a string, too long, not this format or version,
            bad base64, the wrong length for this generator's layout, NaN/infinite values,
            changes beyond :data:`MAX_DELTA`, or made for another generator.
    """
    if not isinstance(text, str):
        raise ValueError(f"adapter: expected a string, got {type(text).__name__}")
    if len(text) > MAX_ENCODED:
        raise ValueError(f"adapter: {len(text)} characters, at most {MAX_ENCODED} accepted")
    fields = text.split(".")
    if len(fields) != 4 or not _TEXT.match(text) or fields[0] != FORMAT:
        raise ValueError(f"adapter: not a photo adapter of format {FORMAT} "
                         f"('{FORMAT}.<parts>.<generator sha256>.<base64>')")
    _, code, sha, body = fields
    parts = {v: k for k, v in PARTS.items()}.get(code)
    if parts is None:
        raise ValueError(f"adapter: unknown parts code {code[:8]!r}")
    if not re.fullmatch(r"[0-9a-f]{8,64}", sha):
        raise ValueError("adapter: the generator's sha256 prefix is not hexadecimal")
    if not generator.sha256.startswith(sha):
        raise ValueError(f"adapter: made for another generator (sha256 {sha[:16]}..., this "
                         f"one is {generator.sha256[:16]}...)")
    n = adapter_size(generator, parts)
    if len(body) != 4 * math.ceil(2 * n / 3):
        raise ValueError(f"adapter: expected {n} numbers for parts {parts!r} of generator "
                         f"{generator.name!r}, got about {len(body) * 3 // 8}")
    try:
        raw = base64.urlsafe_b64decode(body)
    except ValueError:
        raise ValueError("adapter: the data is not valid base64") from None
    if len(raw) != 2 * n:
        raise ValueError(f"adapter: expected {n} numbers, got {len(raw) / 2:g}")
    deltas = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    adapter = Adapter(parts=parts, sha256=sha, deltas=deltas)
    check_adapter(adapter, generator)
    return adapter


@dataclass(frozen=True)
class TuneSettings:
    """How :func:`tune_adapter` tunes (defaults chosen on evidence, docs/photos.md).

    ``schedule``: the learning rate held (``"constant"``) or decayed along a cosine to 5% of
    ``lr`` (``"cosine"``); ``lr_last``: the last convolution's rate over ``lr``;
    ``near_every``: the nearby latents are rendered and held every this many steps (the
    steps between render the photo's latent alone); ``along_axes``: the nearby latents lie
    along random combinations of the edit directions that :func:`tune_adapter` is given
    (where edits go) instead of along random directions; ``first_every``: the first tuned
    layer's parameters (of ``"bn+last"``: layer 1's BatchNorm, whose gradient runs back through
    the costliest convolution) are updated every this many steps, the steps between run the
    network from the next tuned layer on, from the activations of the last full step (both
    nearby latents and photo), and update the rest.

    ``perceptual``: the weight of the extractor's embedding distance between render and photo
    (needs :func:`tune_adapter`'s ``extractor``, which refuses it without one;
    :func:`settings_for` leaves it out explicitly), added every
    ``perceptual_every`` steps (the steps k - 1, 2k - 1, ...: the last of them near the end);
    ``encoder_weight``: the
    weight of the photo encoder's feature distance between render and photo (needs
    ``encoder_features``; the squared difference over the photo's mean square), added every
    ``encoder_every`` steps alike; ``terms_last``: 0 adds them from the first step, N > 0 in
    the last N steps only (whatever ``steps``). Either costs a forward and backward
    pass of that network on the steps it is added."""

    parts: str = DEFAULT_PARTS
    steps: int = DEFAULT_STEPS
    lr: float = DEFAULT_LR
    near: int = DEFAULT_NEAR
    radius: float = DEFAULT_RADIUS
    near_weight: float = DEFAULT_NEAR_WEIGHT
    perceptual: float = DEFAULT_PERCEPTUAL
    schedule: str = DEFAULT_SCHEDULE
    lr_last: float = DEFAULT_LR_LAST
    near_every: int = DEFAULT_NEAR_EVERY
    along_axes: bool = False
    first_every: int = DEFAULT_FIRST_EVERY
    perceptual_every: int = 1
    encoder_weight: float = 0.0
    encoder_every: int = 1
    terms_last: int = DEFAULT_TERMS_LAST

    def __post_init__(self) -> None:
        if self.parts not in PARTS:
            raise ValueError(f"parts: one of {', '.join(PARTS)}, got {self.parts!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        for name in ("steps", "near", "near_every", "first_every", "perceptual_every",
                     "encoder_every", "terms_last"):
            v, least = getattr(self, name), int(name.endswith("every"))
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise ValueError(f"{name}: must be an integer >= {least}, got {v!r}")
        for name in ("lr", "radius", "near_weight", "perceptual", "lr_last", "encoder_weight"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0) or (name in ("lr", "lr_last") and v == 0):
                raise ValueError(f"{name}: must be a finite number >= 0 ({name} > 0), got {v!r}"
                                 if name in ("lr", "lr_last") else
                                 f"{name}: must be a finite number >= 0, got {v!r}")


def settings_for(extractor: object | None, settings: TuneSettings | None = None
                 ) -> TuneSettings:
    """``settings`` (None: the defaults) as a pipeline with or without a feature extractor can
    tune them: without one, the extractor's embedding term (``perceptual``) is left out, and
    the adapter is the one tuned on pixels and the regularizer alone."""
    s = settings or TuneSettings()
    return s if extractor is not None or s.perceptual == 0 else replace(s, perceptual=0.0)


def tune_adapter(generator: FaceGenerator, z: np.ndarray, target: np.ndarray,
                 settings: TuneSettings | None = None, *, extractor: object | None = None,
                 seed: int = 0, should_stop: Callable[[], bool] | None = None,
                 directions: np.ndarray | None = None,
                 encoder_features: Callable[[torch.Tensor], torch.Tensor] | None = None
                 ) -> Adapter:
    """Tune ``settings.parts`` of the generator so that G(z) reproduces ``target``.

    Args:
        generator: the shared generator (not changed).
        z: the photo's latent (L,), frozen (the pivot).
        target: the aligned photo, uint8 (R, R, 3) at the generator's resolution.
        settings: parts, Adam steps and learning rate, the regularizer (``near`` latents at
            distance ``radius`` whose renders should stay the untuned generator's, weight
            ``near_weight``) and the perceptual weight (needs ``extractor``, an object with
            ``forward_tensor``) and the encoder's weight (needs ``encoder_features``).
        seed: seeds the nearby latents (same photo, z and settings: the same adapter).
        should_stop: called before every step; True raises Stopped.
        directions: (K, L) the edit directions (an axis bundle's), for
            ``settings.along_axes``; otherwise unused.
        encoder_features: images (N, 3, R, R) in [0, 1] to a photo encoder's features
            (differentiable), for ``settings.encoder_weight``; otherwise unused.

    Returns:
        the adapter, its deltas rounded to float16 (renders before and after a round trip
        through :func:`encode_adapter` are the same).

    Raises:
        ValueError: bad arguments (named).
    """
    s = settings or TuneSettings()
    r = generator.resolution
    zz = np.asarray(z, dtype=np.float32)
    if zz.shape != (generator.latent_size,) or not np.isfinite(zz).all():
        raise ValueError(f"latent: expected {generator.latent_size} finite numbers, "
                         f"got shape {zz.shape}")
    t = np.asarray(target)
    if t.dtype != np.uint8 or t.shape != (r, r, 3):
        raise ValueError(f"image: expected a uint8 ({r}, {r}, 3) aligned face, got "
                         f"{t.dtype} {t.shape}")
    main = _main(generator)
    layout = adapter_layout(generator, s.parts)
    base = _base(main, layout)
    dev = generator.device
    lo, hi = generator.value_range
    # the leaves, in the layout's order: the first tuned layer's parameters when they are
    # updated only every first_every steps, the other BatchNorms, the last convolution (its
    # own learning rate)
    _, with_last = _split_parts(s.parts)
    at = [int(name.split(".")[1]) for name, _ in layout]
    start = _frozen_until(layout)
    later = sorted({i for i in at if i > start})
    mid = later[0] if later and s.first_every > 1 else None  # where cheap steps start
    group = [0 if mid is not None and i == start else 2 if with_last and k == len(layout) - 1
             else 1 for k, i in enumerate(at)]
    sizes = [sum(math.prod(sh) for (_, sh), gr in zip(layout, group, strict=True) if gr == g)
             for g in range(3)]
    rates = [r for r, n in zip((s.lr, s.lr, s.lr * s.lr_last), sizes, strict=True) if n]
    leaves = [torch.zeros(n, device=dev, requires_grad=True) for n in sizes if n]
    first = leaves[0] if mid is not None else None
    tgt = torch.from_numpy(np.ascontiguousarray(t)).to(dev).permute(2, 0, 1)[None].float() / 255
    gen = torch.Generator().manual_seed(seed)
    if s.along_axes:
        dirs = np.asarray(directions if directions is not None else np.zeros((0, 0)),
                          np.float32)
        if dirs.ndim != 2 or dirs.shape[0] < 1 or dirs.shape[1] != zz.size:
            raise ValueError(f"directions: settings.along_axes needs (K, {zz.size}) edit "
                             f"directions, got shape {dirs.shape}")
        u = torch.randn(s.near, dirs.shape[0], generator=gen) @ torch.from_numpy(dirs)
    else:
        u = torch.randn(s.near, zz.size, generator=gen)
    u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-12)
    z0 = torch.from_numpy(zz)[None].to(dev)
    zs = torch.cat([z0, z0 + s.radius * u.to(dev)]) if s.near and s.near_weight > 0 else z0
    with torch.no_grad():
        # the untuned layers before the first tuned one: the same for every step
        xs = _forward(main, zs, {}, stop=start)
        untuned = _forward(main, xs[1:], {}, start=start) if zs.shape[0] > 1 else None
        temb = (extractor.forward_tensor(tgt)[1]  # type: ignore[attr-defined]
                if extractor is not None and s.perceptual > 0 else None)
        if s.perceptual > 0 and extractor is None:
            raise ValueError("extractor: settings.perceptual needs the feature extractor "
                             "(settings_for(None) gives the tuning without its term)")
        if s.encoder_weight > 0 and encoder_features is None:
            raise ValueError("encoder_features: settings.encoder_weight needs the photo "
                             "encoder's features")
        tfeat = (encoder_features(tgt) if encoder_features is not None
                 and s.encoder_weight > 0 else None)
        tscale = float((tfeat ** 2).mean().clamp_min(1e-12)) if tfeat is not None else 1.0
    opt = torch.optim.Adam([{"params": [leaf], "lr": r} for leaf, r in zip(leaves, rates,
                                                                          strict=True)])
    sched = cosine_schedule(opt, s.steps) if s.schedule == "cosine" and s.steps else None
    for step in range(s.steps):
        if should_stop is not None and should_stop():
            raise Stopped
        # a full step runs from the first tuned layer (with every nearby latent, whose
        # activations the cheap steps between reuse); a cheap one from the next tuned layer
        full = mid is None or step % s.first_every == 0
        held = untuned is not None and ((full and mid is not None) or step % s.near_every == 0)
        deltas = torch.cat(leaves) if len(leaves) > 1 else leaves[0]
        params = _params(layout, base, deltas)
        if mid is None:
            out = _forward(main, xs if held else xs[:1], params, start=start, exact=False)
        else:
            if full:
                h = _forward(main, xs, params, start=start, stop=mid, exact=False)
                cached = h.detach()
            else:
                h = cached if held else cached[:1]
            out = _forward(main, h, params, start=mid, exact=False)
        img = (out[:1] - lo) / (hi - lo)
        loss = pixel_mse(img, tgt).sum()
        if held and untuned is not None:
            loss = loss + s.near_weight * ((out[1:] - untuned) ** 2).mean() / (hi - lo) ** 2
        late = s.terms_last == 0 or step >= s.steps - s.terms_last
        if temb is not None and late and step % s.perceptual_every == s.perceptual_every - 1:
            emb = extractor.forward_tensor(img)[1]  # type: ignore[union-attr]
            loss = loss + s.perceptual * embedding_distance(emb, temb).sum()
        if tfeat is not None and late and step % s.encoder_every == s.encoder_every - 1:
            feat = encoder_features(img)  # type: ignore[misc]
            loss = loss + s.encoder_weight * ((feat - tfeat) ** 2).mean() / tscale
        tuned = leaves if full else leaves[1:]
        grads = torch.autograd.grad(loss, tuned)  # the module's weights get none
        for leaf, grad in zip(tuned, grads, strict=True):
            leaf.grad = grad
        if not full and first is not None:
            first.grad = None  # Adam leaves it (and its moments) as they are
        opt.step()
        if sched is not None:
            sched.step()
        with torch.no_grad():
            for leaf in leaves:
                leaf.clamp_(-MAX_DELTA, MAX_DELTA)
    flat = torch.cat([leaf.detach() for leaf in leaves])
    half = flat.cpu().numpy().astype(np.float16).astype(np.float32)
    return Adapter(parts=s.parts, sha256=generator.sha256[:SHA_PREFIX], deltas=half)
