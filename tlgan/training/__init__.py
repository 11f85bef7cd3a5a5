"""Training our own face generator (``tlgan generator train``) and scoring generators.

- :mod:`tlgan.training.data`: images of a CelebA-format directory, a plain folder or a pack
  file, decoded once to a uint8 array at the training resolution.
- :mod:`tlgan.training.frechet`: the Fréchet distance between embedding statistics.
- :mod:`tlgan.training.networks`: the discriminator, the EMA of the generator, BN recalibration.
- :mod:`tlgan.training.augment`: differentiable batch augmentations (DiffAugment-style).
- :mod:`tlgan.training.config`: the settings (``GeneratorTrainConfig``) and the seeds of the
  random streams.
- :mod:`tlgan.training.trainer`: the training loop (``train``), checkpoints and resume (with
  the loop kit of :mod:`tlgan_base.trainloop`).
- :mod:`tlgan.training.export`: the weights-folder export and the sample grids.
- :mod:`tlgan.training.scoring`: the Fréchet distance of any generator to real faces.

Heavy modules import torch; import them where they are used.
"""
