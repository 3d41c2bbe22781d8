"""The typed DSPy signatures of TarGEN's four steps.

Each docstring is the step's instruction (the text a teleprompter rewrites); the task's own words come
in through input fields, so one instruction serves every task. `instance_signature` and
`correction_signature` add the task's instance fields and its label set as typed fields.
"""

from __future__ import annotations

from typing import Literal

import dspy

from targen_dspy.signatures.spec import FieldSpec, TaskSpec


class ProposeContexts(dspy.Signature):
    """Propose distinct settings in which examples of the task could naturally occur.

    Each context is a short phrase (a domain, place, community, genre or situation). Cover very different
    areas of life, and do not repeat or rephrase any context listed in `avoid`."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    context_kind: str = dspy.InputField(desc="What a context means for this task")
    avoid: list[str] = dspy.InputField(desc="Contexts already chosen")
    count: int = dspy.InputField(desc="How many new contexts to propose")
    contexts: list[str] = dspy.OutputField(desc="The new contexts, one short phrase each")


class WriteSeeds(dspy.Signature):
    """Write new seeds of the kind described, set in the given setting: concrete, self-contained and
    different from each other and from `avoid`. A seed is raw material for a later example, not an example."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    seed_kind: str = dspy.InputField(desc="What one seed is for this task")
    setting: str = dspy.InputField(desc="The context every seed must be set in")
    avoid: list[str] = dspy.InputField(desc="Seeds already written")
    count: int = dspy.InputField(desc="How many new seeds to write")
    seeds: list[str] = dspy.OutputField(desc="The new seeds")


class WriteInstance(dspy.Signature):
    """Build one example of the task around the seed so that its correct label is exactly the target label.

    The target label's meaning is a hard constraint: a careful reader who knows the task must assign
    this label and no other. Stay in the setting, keep every field natural and self-contained, and do
    not copy the seed into fields that should differ from it."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    setting: str = dspy.InputField(desc="The context the example is set in")
    seed: str = dspy.InputField(desc="The raw material to build on")
    target_label: str = dspy.InputField(desc="The label the example must have")
    target_label_meaning: str = dspy.InputField(desc="What an example must satisfy to have this label")


class CorrectLabel(dspy.Signature):
    """Check an example of the task and give the label it truly deserves.

    Read the example as an annotator who follows the guidelines and the label meanings literally. The
    proposed label comes from the example's writer and may be wrong: keep it only if the example
    satisfies its meaning; otherwise choose the label whose meaning it does satisfy."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    correction_guidelines: str = dspy.InputField(desc="How annotators decide the label")
    label_meanings: dict[str, str] = dspy.InputField(desc="Each label and what it requires")
    proposed_label: str = dspy.InputField(desc="The label the writer intended")
    reasoning: str = dspy.OutputField(
        desc="One or two sentences: does the example satisfy the proposed label?"
    )


def _field_type(field: FieldSpec) -> type:
    return Literal[field.choices] if field.choices else str  # type: ignore[return-value,valid-type]


def instance_signature(spec: TaskSpec) -> type[dspy.Signature]:
    """WriteInstance with one typed output field per field the model writes for this task."""
    signature = WriteInstance
    for name, field in spec.written_fields.items():
        signature = signature.append(name, dspy.OutputField(desc=field.description), type_=_field_type(field))
    return signature


def correction_signature(spec: TaskSpec) -> type[dspy.Signature]:
    """CorrectLabel reading the instance's fields (before the proposed label) and answering with a label
    from the task's label set."""
    signature = CorrectLabel
    for name, field in spec.fields.items():
        signature = signature.insert(
            -2, name, dspy.InputField(desc=field.description), type_=_field_type(field)
        )
    return signature.append(
        "corrected_label", dspy.OutputField(desc="The label the example deserves"), type_=spec.label_type
    )
