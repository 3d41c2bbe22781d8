"""How a task's label is handled, in one place: a closed label set (chosen first, then written to) or an
open label (a math answer: the model writes it with the instance, and the checks derive it again).

Every step asks its task's `LabelPolicy` what it tells the model about the label, how it reads the
label back and how a run splits its labels; no step branches on the kind of label itself."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from targen_dspy.signatures.spec import LabelValue, TaskSpec, label_text

Fields = dict[str, Any]


class LabelPolicy:
    """The part shared by both kinds; `kind` names the step signatures to build on (`steps.STEP_BASES`)."""

    kind: str
    open: bool

    def __init__(self, spec: TaskSpec):
        self.spec = spec

    def planned(self, n: int) -> dict[LabelValue | None, int]:
        """How many of `n` slots each label gets (the key None: the model writes the label)."""
        raise NotImplementedError

    def target(self, label: LabelValue | None) -> dict[str, Any]:
        """What the instance step and the rewrites are told of the label they write to."""
        raise NotImplementedError

    def judging(self) -> dict[str, Any]:
        """What a judge (self-correction, critique) is told of the labels."""
        raise NotImplementedError

    def meanings(self) -> dict[str, Any]:
        """What the difficulty step is told besides `target`: what every label means (closed only)."""
        raise NotImplementedError

    def shown(self, label: LabelValue) -> dict[str, Any]:
        """How a critique is shown the instance's label: the target it was written to, or an open label
        as a proposal to check."""
        raise NotImplementedError

    def written(self, answer: Mapping[str, Any], chosen: LabelValue | None) -> LabelValue:
        """The label an instance carries once written: the one chosen first, or the one the model wrote."""
        raise NotImplementedError

    def version(self, fields: Fields, label: LabelValue) -> Fields:
        """An instance as a rewrite sees it, and as it is kept from before one: the fields, and an open
        label, which changes with them."""
        raise NotImplementedError

    def proposal(self, true: LabelValue, i: int) -> LabelValue:
        """The label the i-th correction demonstration proposes for an example labelled `true`: every
        other one wrong, so that the demonstrations teach fixing a label, not only copying it."""
        raise NotImplementedError

    def describe(self) -> str:
        """The labels as `targen tasks` and `targen validate` show them (as in the data: true, not True)."""
        raise NotImplementedError


class ClosedLabels(LabelPolicy):
    kind, open = "closed", False

    def planned(self, n: int) -> dict[LabelValue | None, int]:
        """Exactly `n` split over the labels by weight (equal by default), largest remainder first."""
        labels = self.spec.labels
        total = sum(label.weight for label in labels)
        shares = [n * label.weight / total for label in labels]
        counts = [math.floor(s) for s in shares]
        by_remainder = sorted(range(len(shares)), key=lambda i: (counts[i] - shares[i], i))
        for i in by_remainder[: n - sum(counts)]:
            counts[i] += 1
        return {label.value: count for label, count in zip(labels, counts, strict=True)}

    def target(self, label: LabelValue | None) -> dict[str, Any]:
        return {"target_label": label_text(label), "target_label_meaning": self.spec.meaning(label)}

    def judging(self) -> dict[str, Any]:
        return self.meanings()

    def meanings(self) -> dict[str, Any]:
        return {"label_meanings": self.spec.label_meanings}

    def shown(self, label: LabelValue) -> dict[str, Any]:
        return {"target_label": label_text(label)}

    def written(self, answer: Mapping[str, Any], chosen: LabelValue | None) -> LabelValue:
        return chosen

    def version(self, fields: Fields, label: LabelValue) -> Fields:
        return dict(fields)

    def proposal(self, true: LabelValue, i: int) -> LabelValue:
        values = self.spec.label_values
        return values[(values.index(true) + i) % len(values)]

    def describe(self) -> str:
        return ", ".join(label_text(value) for value in self.spec.label_values)


class OpenLabel(LabelPolicy):
    kind, open = "open", True

    def planned(self, n: int) -> dict[LabelValue | None, int]:
        """Not chosen in advance: all `n` slots have the label None."""
        return {None: n}

    def target(self, label: LabelValue | None) -> dict[str, Any]:
        return {"label_description": self.spec.label_description}

    def judging(self) -> dict[str, Any]:
        return {"label_description": self.spec.label_description}

    def meanings(self) -> dict[str, Any]:
        return {}

    def shown(self, label: LabelValue) -> dict[str, Any]:
        return {"proposed_label": label_text(label)}

    def written(self, answer: Mapping[str, Any], chosen: LabelValue | None) -> LabelValue:
        return answer[self.spec.label_field]

    def version(self, fields: Fields, label: LabelValue) -> Fields:
        return {**fields, self.spec.label_field: label}

    def proposal(self, true: LabelValue, i: int) -> LabelValue:
        """Off by one for every other number (a text or a boolean is proposed as it is)."""
        if i % 2 == 0 or isinstance(true, bool) or not isinstance(true, int | float):
            return true
        return true + 1

    def describe(self) -> str:
        return f"open label {self.spec.label_field} ({self.spec.label_type}, written by the model)"


def label_policy(spec: TaskSpec) -> LabelPolicy:
    return OpenLabel(spec) if spec.open_label else ClosedLabels(spec)
