"""Task specs, the task catalogue and the typed signatures of TarGEN's four steps."""

from targen_dspy.signatures.catalogue import catalogue_names, load_task
from targen_dspy.signatures.spec import FieldSpec, LabelSpec, SeedSpec, TaskSpec, load_spec_file, parse_spec
from targen_dspy.signatures.steps import (
    CorrectLabel,
    ProposeContexts,
    WriteInstance,
    WriteSeeds,
    correction_signature,
    instance_signature,
    seed_signature,
    step_signatures,
)

__all__ = [
    "CorrectLabel",
    "FieldSpec",
    "LabelSpec",
    "ProposeContexts",
    "SeedSpec",
    "TaskSpec",
    "WriteInstance",
    "WriteSeeds",
    "catalogue_names",
    "correction_signature",
    "instance_signature",
    "load_spec_file",
    "load_task",
    "parse_spec",
    "seed_signature",
    "step_signatures",
]
