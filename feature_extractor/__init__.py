"""The CelebA 40-attribute face feature extractor: data, model, training, evaluation, registry.

Import the submodules (``feature_extractor.registry.load_extractor`` etc.); importing this
package has no side effects and does not import torch.
"""
