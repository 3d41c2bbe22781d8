"""Step 4: self-correction. An evaluator re-reads each instance against the task's guidelines and
gives the label it deserves; the spec's validation examples are its demonstrations."""

from __future__ import annotations

from typing import Any

import dspy

from targen_dspy.signatures import TaskSpec, correction_signature
from targen_dspy.signatures.spec import LabelValue, label_text


def correction_demos(spec: TaskSpec) -> list[dspy.Example]:
    """The spec's examples as demonstrations. Every other one is shown with a wrong proposed label,
    so that the demonstrations teach fixing a label, not only copying it."""
    values = spec.label_values
    demos = []
    for i, example in enumerate(spec.examples):
        true = example[spec.label_field]
        proposed = values[(values.index(true) + i) % len(values)]
        fields = {name: example[name] for name in spec.checked_fields}
        demos.append(dspy.Example(**fields, proposed_label=label_text(proposed), corrected_label=true))
    return demos


class SelfCorrector(dspy.Module):
    def __init__(self, spec: TaskSpec):
        super().__init__()
        self.spec = spec
        self.check = dspy.Predict(correction_signature(spec))
        self.check.demos = correction_demos(spec)

    def forward(self, proposed_label: LabelValue, sampling_seed: int = 0, **fields: Any) -> dspy.Prediction:
        """The label an instance with these `fields` (the task's fields by name) deserves, and why.

        Greedy decoding: this is a judgment, not a creative step. The sampling seed only keys the cache,
        so that a retried slot does not replay a cached unparseable answer."""
        verdict = self.check(
            task_description=self.spec.description,
            correction_guidelines=self.spec.correction,
            label_meanings=self.spec.label_meanings,
            proposed_label=label_text(proposed_label),
            **{name: fields[name] for name in self.spec.checked_fields},
            config={"temperature": 0.0, "seed": sampling_seed},
        )
        return dspy.Prediction(label=verdict.corrected_label, reasoning=verdict.reasoning)
