"""Post-processing steps that specs declare by name (`postprocess: targen_dspy.signatures.hooks:NAME`)."""

from __future__ import annotations

from typing import Any

from targen_dspy.signatures.spec import LabelValue


def place_choices(generated: dict[str, Any], label: LabelValue) -> dict[str, Any]:
    """COPA: put the plausible alternative at index `label` (0 → choice1, 1 → choice2)."""
    right, wrong = generated["plausible_choice"], generated["implausible_choice"]
    first, second = (right, wrong) if label == 0 else (wrong, right)
    return {
        "premise": generated["premise"],
        "question": generated["question"],
        "choice1": first,
        "choice2": second,
    }
