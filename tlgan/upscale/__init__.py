"""Face super-resolution: a small CPU-friendly network that doubles a face's pixels.

``sr_net`` (the network and its config), ``upscaler``
(:class:`~tlgan.upscale.upscaler.Upscaler`: uint8 faces in, twice the pixels out),
``sr_weights`` (registered weights), ``fidelity`` (PSNR and SSIM), ``degrade`` (the
degradations that make training inputs look like generated faces), ``sr_training``
(``tlgan sr train``). This module itself imports nothing heavy.
"""

#: the smallest requested image size (px) at which faces pass through the upscaler
MIN_SIZE = 128

__all__ = ["MIN_SIZE"]
