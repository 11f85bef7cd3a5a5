"""Local edits: an axis's move changes the region where that axis's attribute lives.

A move along an axis changes the whole picture (background included). A *local* edit renders
the start latent and the moved latent up to an intermediate feature map of the generator
(the DCGAN's 16x16x128 map), blends them there with the axis's spatial mask (moved inside,
start outside) and renders the rest of the network from the blend, so the change stays in
the mask's region and its edges are smoothed by the layers after the blend. The layers after
the blend still spread a little of the change into the background (their receptive fields
reach beyond the mask), so the rendered face is then composited with the start's own render
in pixels through a ramp of the same mask (:func:`keep_ramp`): where the mask is below
:data:`KEEP_BELOW` the start's pixels come back exactly, from :data:`KEEP_FULL` up the
blended render is kept whole (evidence in docs/axes.md, ``python bench/locality.py``).

Each axis's mask is learned on the bundle's shipped samples (:func:`learn_masks`): where the
pixel change of a move along the axis changes the extractor's logit of that axis's attribute
(the change times the logit's gradient at the midpoint image, positive part, mean over faces,
blurred and scaled to [0, 1]). Background wash-out that the attribute does not depend on
therefore stays out of the mask. The reference axes (gender, age) and axes whose mask covers
more than :data:`GLOBAL_AREA` of the image are *global*: they carry no mask and a move along
one renders as before. The masks are stored with the axis bundle (``masks.npz``, checksummed,
with the generator they were learned for: ``axes.bundle.attach_masks``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from axes.bundle import AxisBundle
from axes.samples import SampleCache
from feature_extractor.model import Extractor
from tlgan.generators.base import FaceGenerator
from tlgan.generators.dcgan import DCGANGenerator
from tlgan.latents import DEFAULT_SPACE
from tlgan_base.progress import progress_bar

__all__ = ["BLEND_LAYER", "GLOBAL_AREA", "KEEP_BELOW", "KEEP_FULL", "MASK_METHOD", "MaskSource",
           "blend_mask", "change_attribution", "frame_face_ratio", "keep_ramp", "learn_masks",
           "render_local", "render_local_tensor", "supports_locality"]



class MaskSource(Protocol):
    """What :func:`learn_masks` needs of a pipeline: its models, axes and samples."""

    @property
    def generator(self) -> FaceGenerator: ...
    @property
    def extractor(self) -> Extractor | None: ...
    @property
    def bundle(self) -> AxisBundle | None: ...
    @property
    def latent_space(self) -> str: ...
    def sample_cache(self) -> SampleCache: ...


#: the blend happens on the output of ``main[:BLEND_LAYER]`` of the DCGAN (16x16x128)
BLEND_LAYER = 8
#: an axis whose learned mask covers more than this share of the image stays global
GLOBAL_AREA = 0.6
#: the mask recipe (recorded in the masks' metadata)
MASK_METHOD = "gradient-x-change"
MASK_STEP = 2.0
MASK_SIGMA = 2.0
MASK_QUANTILE = 0.9
#: the pixel composite after the blend: where the mask is below KEEP_BELOW the start's pixels
#: come back exactly; the blended render is kept whole from KEEP_FULL up (a linear ramp
#: between). Chosen on seeds 20000-20039 (not the bench's faces): Blond_Hair +2 changes the
#: background outside its mask 0.11 as much as the face (0.61 without), its P(Blond_Hair)
#: moves +0.293 (+0.296 without); compositing with the mask itself kept +0.257
#: (``python bench/locality.py --hair-variants --no-judge --seed 20000``).
KEEP_BELOW = 0.1
KEEP_FULL = 0.4


def frame_face_ratio(before: np.ndarray, after: np.ndarray, frame: int = 6,
                     face: int = 28) -> float:
    """How much an edit repaints the background: the mean |pixel change| from ``before`` to
    ``after`` (uint8 (N, H, W, 3)) in the outer ``frame`` px of the image divided by that in
    the central ``face`` x ``face`` square, over all faces (nan when the face is unchanged)."""
    d = np.abs(after.astype(np.float64) - before.astype(np.float64)).mean(axis=-1)
    r = d.shape[1]
    if r <= 2 * frame or face > r:
        raise ValueError(f"images: {r} px is too small for a {frame} px frame and a "
                         f"{face} px face")
    outer = np.ones((r, r), bool)
    outer[frame:-frame, frame:-frame] = False
    c = (r - face) // 2
    inner = float(d[:, c:c + face, c:c + face].mean())
    return float(d[:, outer].mean() / inner) if inner > 0 else float("nan")


def keep_ramp(masks: torch.Tensor, below: float = KEEP_BELOW,
              full: float = KEEP_FULL) -> torch.Tensor:
    """The weight of the edited render in the pixel composite of a local edit: 0 where
    ``masks`` (any shape, values in [0, 1]) is at most ``below``, 1 from ``full`` up, linear
    between."""
    if not 0 <= below < full <= 1:
        raise ValueError(f"below, full: need 0 <= below < full <= 1, got {below}, {full}")
    return ((masks - below) / (full - below)).clamp(0.0, 1.0)


def supports_locality(generator: FaceGenerator, space: str = DEFAULT_SPACE) -> bool:
    """Whether local edits can be rendered: a DCGAN generator, latents in z."""
    return isinstance(generator.module, DCGANGenerator) and space == DEFAULT_SPACE


def _features(module: DCGANGenerator, z: torch.Tensor) -> torch.Tensor:
    # the same first layer as DCGANGenerator.forward at inference (batch-invariant product)
    first = module.main[0]
    assert isinstance(first, torch.nn.ConvTranspose2d)
    w = first.weight.flatten(1)
    flat = torch.bmm(z[:, None, :], w.expand(z.shape[0], -1, -1)).squeeze(1)
    x = flat.view(z.shape[0], first.out_channels, *first.kernel_size)
    out: torch.Tensor = module.main[1:BLEND_LAYER](x)
    return out


def render_local(generator: FaceGenerator, start: np.ndarray, moved: np.ndarray,
                 masks: np.ndarray, *, composite: bool = True) -> torch.Tensor:
    """Faces (N, 3, H, W) in [0, 1] on the generator's device: ``moved`` (N, L) inside
    ``masks`` (N, H, W) in [0, 1] and ``start`` (N, L) outside, blended on the generator's
    intermediate feature map, then composited with the start's render through
    :func:`keep_ramp` of the masks (where a mask is at most :data:`KEEP_BELOW` the pixels are
    the start's; ``composite=False``: the feature-map blend alone, for comparisons). A mask
    of ones renders ``moved`` as :meth:`FaceGenerator.render_tensor` does (up to rounding)."""
    if not supports_locality(generator):
        raise ValueError(f"locality: generator {generator.name!r} does not support local "
                         "edits (DCGAN generators only)")
    generator.check_latents(start, "start")
    generator.check_latents(moved, "moved")
    outs = []
    with torch.inference_mode():
        for i in range(0, len(moved), generator.max_batch):
            s = torch.as_tensor(np.asarray(start[i:i + generator.max_batch], np.float32),
                                device=generator.device)
            m = torch.as_tensor(np.asarray(moved[i:i + generator.max_batch], np.float32),
                                device=generator.device)
            k = torch.as_tensor(np.array(masks[i:i + generator.max_batch], np.float32),
                                device=generator.device)
            outs.append(render_local_tensor(generator, s, m, k, composite=composite))
    if not outs:
        r = generator.resolution
        return torch.empty((0, 3, r, r), device=generator.device)
    return torch.cat(outs)


def render_local_tensor(generator: FaceGenerator, start: torch.Tensor, moved: torch.Tensor,
                        masks: torch.Tensor, *, composite: bool = True) -> torch.Tensor:
    """:func:`render_local` of tensors on the generator's device, in one pass, that autograd
    follows (back to ``moved`` and ``start``): faces (N, 3, H, W) in [0, 1]."""
    if not supports_locality(generator):
        raise ValueError(f"locality: generator {generator.name!r} does not support local "
                         "edits (DCGAN generators only)")
    module = generator.module
    assert isinstance(module, DCGANGenerator)
    lo, hi = generator.value_range
    hs, hm = _features(module, start), _features(module, moved)
    k = F.adaptive_avg_pool2d(masks[:, None], hs.shape[-1])
    tail = module.main[BLEND_LAYER:]
    x = tail(hs + k * (hm - hs))
    keep = keep_ramp(masks[:, None])
    if composite and bool((keep < 1).any()):
        xs = tail(hs)
        x = xs + keep * (x - xs)
    return ((x - lo) / (hi - lo)).clamp(0.0, 1.0)


def blend_mask(masks: Mapping[str, np.ndarray], moves: Mapping[str, float],
               resolution: int) -> np.ndarray | None:
    """The mask (H, W) of a summed move: the pixelwise maximum of the moved axes' masks
    (moves of 0 ignored); None when a moved axis has no mask (a global axis, or one of a
    request's own) or nothing moves."""
    moved = [n for n, d in moves.items() if d != 0]
    if not moved or any(n not in masks for n in moved):
        return None
    out = np.zeros((resolution, resolution), np.float32)
    for n in moved:
        out = np.maximum(out, masks[n])
    return out


def _blur(m: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (N, H, W) maps (edges replicated)."""
    r = max(1, int(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-x ** 2 / (2 * sigma * sigma))
    k = k / k.sum()
    t = m[:, None]
    t = F.conv2d(F.pad(t, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    t = F.conv2d(F.pad(t, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return t[:, 0]


def change_attribution(extractor: Extractor, before: torch.Tensor, after: torch.Tensor,
                       weights: Sequence[tuple[int, float]]) -> torch.Tensor:
    """Per face (N, H, W) on the CPU, float32: where the pixel change from ``before`` to
    ``after`` (N, 3, H, W) raises the weighted sum of the extractor's attribute logits
    (``weights``: (attribute column, weight) pairs): that sum's gradient at the midpoint
    image times the change, summed over channels, positive part (the raw material of
    :func:`learn_masks`)."""
    xm = ((before + after) / 2).clone().requires_grad_(True)
    probs, _ = extractor.forward_tensor(xm)
    logit = sum(w * torch.logit(probs[:, c].clamp(1e-6, 1 - 1e-6)) for c, w in weights)
    (grad,) = torch.autograd.grad(logit.sum(), xm)  # type: ignore[union-attr]
    return (grad * (after - before)).sum(1).clamp(min=0).detach().cpu().float()


def learn_masks(pipeline: MaskSource, names: Sequence[str] | None = None, *, faces: int = 160,
                step: float = MASK_STEP, sigma: float = MASK_SIGMA,
                quantile: float = MASK_QUANTILE, global_area: float = GLOBAL_AREA,
                progress: bool = False
                ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Learn the masks of the bundle's axes on the first ``faces`` shipped samples.

    Axes whose mask covers more than ``global_area`` of the image stay global.
    Returns ({axis: mask (H, W) float32 in [0, 1]} for the local axes, metadata: the recipe,
    the generator and extractor, and per axis its area or why it is global).

    Raises:
        ValueError: no bundle, no extractor, no shipped samples, or a generator that cannot
            render local edits.
    """
    if pipeline.bundle is None or pipeline.extractor is None:
        raise ValueError("locality: learning masks needs an axis bundle and an extractor")
    if not supports_locality(pipeline.generator, pipeline.latent_space):
        raise ValueError(f"locality: generator {pipeline.generator.name!r} does not support "
                         "local edits (DCGAN generators, latents in z)")
    bundle, ext, gen = pipeline.bundle, pipeline.extractor, pipeline.generator
    z = np.asarray(pipeline.sample_cache().z[:faces], np.float32)
    attrs = ext.attributes
    names = list(names or bundle.names)
    masks: dict[str, np.ndarray] = {}
    axes: dict[str, dict[str, Any]] = {}
    for name in progress_bar(names, desc="masks", unit="axis", enabled=progress):
        if name in bundle.references:
            axes[name] = {"global": "reference axis (gender/age: the whole face)"}
            continue
        if name not in attrs:
            axes[name] = {"global": "no extractor attribute to learn a mask from"}
            continue
        d = bundle.directions[bundle.index(name)].astype(np.float32)[None]
        xa = gen.render_tensor(z - step / 2 * d)
        xb = gen.render_tensor(z + step / 2 * d)
        att = change_attribution(ext, xa, xb, [(attrs.index(name), 1.0)]).mean(0, keepdim=True)
        m = _blur(att, sigma)[0]
        scale = float(torch.quantile(m.flatten(), quantile))
        mask = (m / scale).clamp(0, 1).numpy().astype(np.float32) if scale > 0 else None
        if mask is None:
            axes[name] = {"global": "a move changes nothing the attribute depends on"}
            continue
        area = round(float(mask.mean()), 4)
        if area > global_area:
            axes[name] = {"global": f"mask covers {area:.0%} of the image", "area": area}
            continue
        masks[name] = mask
        axes[name] = {"area": area}
    meta = {"method": MASK_METHOD, "faces": len(z), "step": step, "sigma": sigma,
            "quantile": quantile, "global_area": global_area, "blend_layer": BLEND_LAYER,
            "resolution": gen.resolution, "generator": gen.name,
            "generator_sha256": gen.sha256, "extractor": ext.name,
            "extractor_sha256": ext.sha256, "axes": axes}
    return masks, meta
