"""Face generators: the interface, the weights registry and the plug-in loader."""

from tlgan.generators.base import FaceGenerator, to_uint8
from tlgan.generators.generator_weights import DEFAULT, GENERATORS, GeneratorWeights, load_generator

__all__ = [
    "DEFAULT", "GENERATORS", "FaceGenerator", "GeneratorWeights", "load_generator", "to_uint8",
]
