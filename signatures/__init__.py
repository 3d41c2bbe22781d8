"""Task specs, the task catalogue and the typed signatures of TarGEN's four steps."""

from targen_dspy.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "catalogue": ("catalogue_names", "load_task"),
        "spec": ("FieldSpec", "LabelSpec", "SeedSpec", "TaskSpec", "load_spec_file", "parse_spec"),
        "steps": (
            "CorrectLabel",
            "ProposeContexts",
            "WriteInstance",
            "WriteSeeds",
            "correction_signature",
            "instance_signature",
            "seed_signature",
            "step_signatures",
        ),
    },
)
