"""The signature of example-based generation with self-reference ("LLMs as better data creators"):
one formatting example in JSON, then batches of new examples in the same shape, each batch
conditioned on examples sampled from what was already generated."""

from __future__ import annotations

from typing import Any, Literal

import dspy
from pydantic import create_model

from targen_dspy.errors import SpecError
from targen_dspy.signatures.spec import TaskSpec


class WriteLikeReferences(dspy.Signature):
    """Write new, varied examples of the task in exactly the JSON shape of the format example.

    The references are earlier examples: match their shape and quality but not their content; each new
    example must differ from every reference and from the others in topic, wording and answer."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    format_example: dict[str, Any] = dspy.InputField(desc="One example showing the fields and their types")
    references: list[dict[str, Any]] = dspy.InputField(desc="Earlier examples to vary from")
    count: int = dspy.InputField(desc="How many new examples to write")


def example_model(spec: TaskSpec, example: dict[str, Any]) -> type:
    """A pydantic model of one example: the format example's keys and value types; the label, when the
    example has the task's label field, is restricted to the task's label set."""
    if not example:
        raise SpecError("the format example is empty; give one JSON object with the task's fields")
    fields: dict[str, Any] = {}
    for name, value in example.items():
        if name == spec.label_field:
            fields[name] = (spec.label_annotation, ...)
        elif name in spec.fields and spec.fields[name].choices:
            fields[name] = (Literal[spec.fields[name].choices], ...)  # type: ignore[valid-type]
        elif isinstance(value, bool | int | float | str):
            fields[name] = (type(value), ...)
        else:
            raise SpecError(
                f"format example field {name!r} is a {type(value).__name__}; use strings, numbers or booleans"
            )
    return create_model(f"{spec.name.capitalize()}Example", **fields)


def self_reference_signature(spec: TaskSpec, example: dict[str, Any]) -> type[dspy.Signature]:
    model = example_model(spec, example)
    return WriteLikeReferences.append(
        "examples", dspy.OutputField(desc="The new examples"), type_=list[model]
    )
