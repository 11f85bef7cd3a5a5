"""The discriminator, weight init, the generator's EMA and BatchNorm recalibration.

The generator is :class:`tlgan.generators.dcgan.DCGANGenerator` itself, so what training
exports loads through the generator registry with no extra code.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from tlgan.generators.dcgan import DCGANGenerator

LATENT_SIZE = 100
RESOLUTION = 64


D_ARCHS = ("sngan", "dcgan")
D_NORMS = ("spectral", "batch", "none")


class Discriminator(nn.Module):
    """A 64x64 -> one-logit discriminator.

    Architectures:
        ``dcgan``: the DCGAN tutorial's D (four 4x4 stride-2 convs, LeakyReLU 0.2).
        ``sngan``: the SNGAN "standard CNN" D (Miyato et al. 2018) grown by one stage for
            64x64: pairs of a 3x3 stride-1 and a 4x4 stride-2 conv per scale, LeakyReLU 0.1;
            about 5x the FLOPs of ``dcgan``. An option to measure: in a 400-iteration CPU
            check (widths 32, batch 32) it overpowered G, which collapsed to stripes.
    Normalisation: ``spectral`` (every conv; the usual partner of the hinge loss), ``batch``
    (BatchNorm after every conv but the first and last, as in the DCGAN tutorial) or ``none``.
    """

    def __init__(self, ndf: int = 64, nc: int = 3, arch: str = "dcgan",
                 norm: str = "spectral") -> None:
        super().__init__()
        if arch not in D_ARCHS:
            raise ValueError(f"d_arch: must be one of {', '.join(D_ARCHS)}, got {arch!r}")
        if norm not in D_NORMS:
            raise ValueError(f"d_norm: must be one of {', '.join(D_NORMS)}, got {norm!r}")
        self.uses_batch_norm = norm == "batch"
        slope = 0.2 if arch == "dcgan" else 0.1

        def block(cin: int, cout: int, k: int, s: int, p: int, bn: bool) -> list[nn.Module]:
            c = nn.Conv2d(cin, cout, k, s, p, bias=not (bn and norm == "batch"))
            layers: list[nn.Module] = [_sn(c) if norm == "spectral" else c]
            if bn and norm == "batch":
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(slope, inplace=True))
            return layers

        layers: list[nn.Module] = []
        if arch == "dcgan":
            widths = [nc, ndf, ndf * 2, ndf * 4, ndf * 8]
            for i in range(4):  # 64 -> 32 -> 16 -> 8 -> 4
                layers += block(widths[i], widths[i + 1], 4, 2, 1, bn=i > 0)
        else:
            layers += block(nc, ndf, 3, 1, 1, bn=False)
            widths = [ndf, ndf * 2, ndf * 4, ndf * 8]
            for i, w in enumerate(widths):  # 64 -> 32 -> 16 -> 8 -> 4
                layers += block(w, w, 4, 2, 1, bn=True)
                if i + 1 < len(widths):
                    layers += block(w, widths[i + 1], 3, 1, 1, bn=True)
        last = nn.Conv2d(ndf * 8, 1, 4, 1, 0)
        layers.append(_sn(last) if norm == "spectral" else last)
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.main(x)
        return out.reshape(x.shape[0])


def build_generator(ngf: int = 64) -> DCGANGenerator:
    """The registry's DCGAN shape: z in R^100 -> 3x64x64."""
    return DCGANGenerator(nz=LATENT_SIZE, ngf=ngf, nc=3)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            weight = getattr(m, "parametrizations", None)
            w: torch.Tensor = weight.weight.original if weight is not None else m.weight
            nn.init.normal_(w, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class EMA:
    """Exponential moving average of a module's parameters; buffers are copied.

    ``decay_at(step)`` warms up as ``min(decay, (1 + step) / (10 + step))`` so the average is
    not dominated by the random initial weights early in training.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema_decay: must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = self.decay_at(step)
        ema_p: list[torch.Tensor] = list(self.module.parameters())
        src_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, src_p, 1.0 - d)
        ema_b: list[torch.Tensor] = list(self.module.buffers())
        if ema_b:
            torch._foreach_copy_(ema_b, list(model.buffers()))


@torch.no_grad()
def recalibrate_bn(gen: nn.Module, latent_size: int, *, batches: int, batch_size: int,
                   generator: torch.Generator, device: torch.device) -> nn.Module:
    """Re-estimate BatchNorm running statistics of ``gen`` for its own weights, in place.

    The EMA weights never ran in train mode, so the running statistics copied from the live
    generator do not match them; averaging batch statistics over ``batches`` x ``batch_size``
    random latents (cumulative average, momentum None) makes eval-mode output match train-mode
    output. Returns ``gen`` in eval mode.
    """
    bns = [m for m in gen.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or batches < 1:
        return gen.eval()
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    gen.train()
    for _ in range(batches):
        z = torch.randn(batch_size, latent_size, generator=generator,
                        device=generator.device).to(device)
        gen(z)
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    return gen.eval()
