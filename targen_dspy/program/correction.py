"""Step 4: self-correction. An evaluator re-reads each instance against the task's guidelines and
gives the label it deserves; the spec's validation examples are its demonstrations."""

from __future__ import annotations

from typing import Any

import dspy

from targen_dspy.errors import AskAgain
from targen_dspy.program.options import Correction
from targen_dspy.signatures import TaskSpec, correction_signature
from targen_dspy.signatures.labels import label_policy
from targen_dspy.signatures.spec import LabelValue, label_text


def correction_demos(spec: TaskSpec) -> list[dspy.Example]:
    """The spec's examples as demonstrations. Every other one is shown with a wrong proposed label,
    so that the demonstrations teach fixing a label, not only copying it."""
    labels = label_policy(spec)
    demos = []
    for i, example in enumerate(spec.examples):
        true = example[spec.label_field]
        proposed = labels.proposal(true, i)
        fields = {name: example[name] for name in spec.correction_fields}
        demos.append(dspy.Example(**fields, proposed_label=label_text(proposed), corrected_label=true))
    return demos


# With `--correction filter`, the attempts per slot: a judge at chance agrees with a two-label instance
# one time in two, so six attempts leave about 1.6 % of the slots unfilled.
FILTER_ATTEMPTS = 6


class JudgedOtherwise(AskAgain):
    """`--correction filter`: the corrector judged an instance another label than it was written for.
    The engine makes a new instance in its place, as for an answer that does not parse."""

    step = "filtered"  # how the engine counts the instances made again

    def __init__(self, written: LabelValue, judged: LabelValue):
        super().__init__(f"written for {written!r}, judged {judged!r}")
        self.judged = judged

    def gave_up(self) -> str:
        return f"self-correction judged every attempt otherwise (last: {self.judged!r})"


def corrected(
    correction: Correction,
    corrector: SelfCorrector,
    label: LabelValue,
    sampling_seed: int,
    fields: dict[str, Any],
) -> tuple[LabelValue, str]:
    """The final label and the corrector's reasoning under the run's `correction`: the corrector's label
    (relabel), the written label if the corrector agrees, else JudgedOtherwise (filter), or the written
    label unchecked (off)."""
    if correction == "off":
        return label, ""
    verdict = corrector(proposed_label=label, sampling_seed=sampling_seed, **fields)
    if correction == "filter" and verdict.label != label:
        raise JudgedOtherwise(label, verdict.label)
    return verdict.label, verdict.reasoning


class SelfCorrector(dspy.Module):
    def __init__(self, spec: TaskSpec):
        super().__init__()
        self.spec = spec
        self.labels = label_policy(spec)
        self.check = dspy.Predict(correction_signature(spec))
        self.check.demos = correction_demos(spec)

    def forward(self, proposed_label: LabelValue, sampling_seed: int = 0, **fields: Any) -> dspy.Prediction:
        """The label an instance with these `fields` (the task's fields by name) deserves, and why.

        Greedy decoding: this is a judgment, not a creative step. The sampling seed only keys the cache,
        so that a retried slot does not replay a cached unparseable answer."""
        verdict = self.check(
            task_description=self.spec.description,
            correction_guidelines=self.spec.correction,
            **self.labels.judging(),
            proposed_label=label_text(proposed_label),
            **{name: fields[name] for name in self.spec.correction_fields},
            config={"temperature": 0.0, "seed": sampling_seed},
        )
        return dspy.Prediction(label=verdict.corrected_label, reasoning=verdict.reasoning)
