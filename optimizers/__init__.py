"""Metrics and teleprompter wiring that tune the TarGEN program's prompts from a small gold set."""

from targen_dspy.optimizers.compile import OPTIMIZERS, CompileSettings, compile_program, teleprompter
from targen_dspy.optimizers.gold import correction_examples, load_gold, split_gold
from targen_dspy.optimizers.metrics import correction_metric, generation_metric
from targen_dspy.optimizers.program_file import load_compiled, save_compiled

__all__ = [
    "OPTIMIZERS",
    "CompileSettings",
    "compile_program",
    "correction_examples",
    "correction_metric",
    "generation_metric",
    "load_compiled",
    "load_gold",
    "save_compiled",
    "split_gold",
    "teleprompter",
]
