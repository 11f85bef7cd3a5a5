"""The CelebA 40-attribute face feature extractor: data (:mod:`~feature_extractor.celeba_index`,
:mod:`~feature_extractor.celeba_images`, :mod:`~feature_extractor.transforms`), model, training,
evaluation, calibration, registry.

Import the submodules (``feature_extractor.extractor_weights.load_extractor`` etc.); importing this
package has no side effects and does not import torch.
"""
