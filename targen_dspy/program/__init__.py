"""The TarGEN program: one DSPy module per step, composed by `TarGEN`."""

from targen_dspy.program.contexts import ContextGenerator
from targen_dspy.program.correction import SelfCorrector
from targen_dspy.program.instances import InstanceGenerator
from targen_dspy.program.seeds import SeedGenerator
from targen_dspy.program.targen import TarGEN

__all__ = ["ContextGenerator", "InstanceGenerator", "SeedGenerator", "SelfCorrector", "TarGEN"]
