"""The DCGAN generator of PyTorch's DCGAN tutorial (64x64, tanh output).

Parameter names match the tutorial's ``netG`` (``main.0.weight`` ...), so state dicts
saved by the tutorial (e.g. the one inside ``gan-face-generate``) and by
``tlgan generator train`` load into the same module.
"""

from __future__ import annotations

import torch
from torch import nn


class DCGANGenerator(nn.Module):
    """z (N, nz) or (N, nz, 1, 1) -> images (N, nc, 64, 64) in [-1, 1]."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.nz = nz
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def _weight64(self, weight: torch.Tensor) -> torch.Tensor:
        """The first layer's weight as a float64 (K, J) matrix, converted once per weight
        version (loading or training new weights bumps the version)."""
        if torch.jit.is_tracing():  # a traced graph must not depend on a cache
            return weight.flatten(1).double()
        key = (id(weight), weight._version, weight.device)
        cached = self.__dict__.get("_w64")
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = (key, weight.detach().flatten(1).double())
            self.__dict__["_w64"] = cached
        w64: torch.Tensor = cached[1]
        return w64

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 4:
            z = z.flatten(1)
        first = self.main[0]
        assert isinstance(first, nn.ConvTranspose2d)
        # A transposed convolution of a 1x1 input (stride 1, no padding, no bias) is a matrix
        # product, out[n, c, i, j] = sum_k z[n, k] W[k, c, i, j]; written as one it runs ~20x
        # faster at batch 1 on CPU (0.6 ms -> 0.03 ms), the same values up to rounding.
        # Batch-invariant at inference: BLAS picks other kernels (other float32 rounding)
        # for an (N, K) @ (K, J) product than for a (1, K) row on some CPUs, so a face would
        # change with the batch it is rendered in. Accumulated in float64 and rounded once to
        # float32, each row gets the same float32 value whatever the kernel (barring a
        # float64 tie at a float32 rounding midpoint). Training keeps the float32 product.
        flat = (z @ first.weight.flatten(1) if self.training
                else (z.double() @ self._weight64(first.weight)).float())
        x = flat.view(z.shape[0], first.out_channels, *first.kernel_size)
        out: torch.Tensor = self.main[1:](x)
        return out
