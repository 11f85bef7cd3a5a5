"""The CelebA 40-attribute face feature extractor: data (:mod:`~feature_extractor.celeba`,
:mod:`~feature_extractor.images`, :mod:`~feature_extractor.transforms`), model, training,
evaluation, calibration, registry.

Import the submodules (``feature_extractor.registry.load_extractor`` etc.); importing this
package has no side effects and does not import torch.
"""
