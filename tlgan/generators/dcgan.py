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
        # change with the batch it is rendered in. A batched product of N (1, K) rows
        # computes every row exactly as a batch of one does: 0.18 ms per face at batch 1
        # (0.16 as one product), 0.14 at batch 64-256 (0.02), against 4-11 ms for the rest
        # of the network. Training keeps the one product.
        w = first.weight.flatten(1)
        flat = (z @ w if self.training
                else torch.bmm(z[:, None, :], w.expand(z.shape[0], -1, -1)).squeeze(1))
        x = flat.view(z.shape[0], first.out_channels, *first.kernel_size)
        out: torch.Tensor = self.main[1:](x)
        return out
