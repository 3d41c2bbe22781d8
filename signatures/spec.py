"""Task specs: the YAML a user writes to describe a task, validated into a frozen pydantic model.

A spec says what an instance looks like and what each label means; `signatures.steps` turns it into
the typed DSPy signatures of the four TarGEN steps.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from targen_dspy.errors import SpecError

LabelValue = bool | int | str
Postprocess = Callable[[dict[str, Any], LabelValue], dict[str, Any]]

# Names the step signatures use for their own inputs and outputs; instance fields must differ.
RESERVED_NAMES = frozenset(
    {
        "task_description",
        "setting",
        "seed",
        "target_label",
        "target_label_meaning",
        "label_meanings",
        "correction_guidelines",
        "proposed_label",
        "reasoning",
        "corrected_label",
        "id",
        "context",
        "constrained_label",
        "relabeled",
    }
)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldSpec(_Frozen):
    """One text field of an instance. A bare string in YAML is taken as its description."""

    description: str = Field(min_length=1)
    choices: tuple[LabelValue, ...] | None = Field(
        default=None, description="If set, the field may only take these values."
    )


class LabelSpec(_Frozen):
    value: LabelValue
    means: str = Field(
        min_length=1, description="The constraint an instance must satisfy to carry this label."
    )
    weight: float = Field(default=1.0, gt=0, description="Relative share of the dataset (default: equal).")


class SeedSpec(_Frozen):
    description: str = Field(min_length=1, description="What one seed is for this task.")
    field: str | None = Field(
        default=None,
        description="Instance field the seed is copied into verbatim (the model writes the rest).",
    )


def _fields_from_yaml(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {k: {"description": v} if isinstance(v, str) else v for k, v in raw.items()}
    return raw


class TaskSpec(_Frozen):
    """A task, described well enough to generate labeled instances of it without any examples."""

    name: str = Field(pattern=_NAME.pattern, description="Short identifier, e.g. `rte`.")
    description: str = Field(min_length=1, description="What the task is, for someone who has never seen it.")
    fields: dict[str, FieldSpec] = Field(min_length=1, description="The instance's input fields, in order.")
    label_field: str = Field(default="label", pattern=_NAME.pattern)
    labels: tuple[LabelSpec, ...] = Field(min_length=2)
    context: str = Field(min_length=1, description="What a context (setting, domain) is for this task.")
    seed: SeedSpec
    correction: str = Field(min_length=1, description="How to check an instance's label.")
    generate: dict[str, FieldSpec] | None = Field(
        default=None,
        description="Fields the model writes, when they differ from `fields`; needs `postprocess`.",
    )
    postprocess: str | None = Field(
        default=None,
        description="`module:function` turning (generated fields, label) into the instance's fields.",
    )
    examples: tuple[dict[str, Any], ...] = Field(
        default=(), description="Optional labeled validation examples."
    )

    _fields_shorthand = field_validator("fields", "generate", mode="before")(_fields_from_yaml)

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        names = list(self.fields) + list(self.generate or {})
        for name in names:
            if not _NAME.match(name):
                raise ValueError(f"field name {name!r} must be lower_snake_case")
            if name in RESERVED_NAMES or name == self.label_field:
                raise ValueError(f"field name {name!r} is reserved; rename it")
        values = [label.value for label in self.labels]
        if len({json.dumps(v) for v in values}) != len(values):
            raise ValueError(f"label values must be unique, got {values}")
        if self.seed.field is not None and self.seed.field not in self.generator_fields:
            raise ValueError(f"seed.field {self.seed.field!r} is not one of the fields {names}")
        if (self.generate is None) != (self.postprocess is None):
            raise ValueError("`generate` and `postprocess` go together: set both or neither")
        for i, example in enumerate(self.examples):
            missing = [f for f in [*self.fields, self.label_field] if f not in example]
            if missing:
                raise ValueError(f"examples[{i}] lacks {missing}")
            if example[self.label_field] not in values:
                raise ValueError(
                    f"examples[{i}] has label {example[self.label_field]!r}, not one of {values}"
                )
        return self

    @property
    def generator_fields(self) -> dict[str, FieldSpec]:
        return dict(self.generate or self.fields)

    @property
    def written_fields(self) -> dict[str, FieldSpec]:
        """The fields the generator writes: the generated fields less the one the seed fills."""
        return {k: v for k, v in self.generator_fields.items() if k != self.seed.field}

    @property
    def label_values(self) -> tuple[LabelValue, ...]:
        return tuple(label.value for label in self.labels)

    @property
    def label_type(self) -> Any:
        return Literal[self.label_values]  # type: ignore[valid-type]

    def meaning(self, value: LabelValue) -> str:
        return next(label.means for label in self.labels if label.value == value)

    @property
    def label_meanings(self) -> dict[str, str]:
        return {label_text(label.value): label.means for label in self.labels}

    def postprocessor(self) -> Postprocess | None:
        if self.postprocess is None:
            return None
        return _import_function(self.postprocess)

    @property
    def hash(self) -> str:
        """Content hash: two specs with the same meaning have the same hash, whatever their file says."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def label_text(value: LabelValue) -> str:
    """How a label is shown to the model: strings as they are, numbers and booleans as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _import_function(path: str) -> Postprocess:
    module_name, _, attr = path.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SpecError(
            f"postprocess {path!r} cannot be imported ({exc}); use `package.module:function`"
        ) from exc
    if not callable(function):
        raise SpecError(f"postprocess {path!r} is not a function")
    return function


def parse_spec(data: Any, source: str = "spec") -> TaskSpec:
    """Validate already-parsed YAML into a TaskSpec, or raise a one-line SpecError."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a task spec is a YAML mapping (name, description, fields, labels, ...)")
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "spec"
        raise SpecError(f"{source}: {where}: {first['msg']} (see `targen tasks` for working specs)") from None
    spec.postprocessor()  # fail now, not mid-run, when the declared hook is missing
    return spec


def load_spec_file(path: Path) -> TaskSpec:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}:{where} is not valid YAML; check indentation and quoting") from None
    return parse_spec(data, source=str(path))
