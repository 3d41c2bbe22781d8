"""Task specs: the YAML a user writes to describe a task, validated into a frozen pydantic model.

A spec says what an instance looks like and what each label means; `signatures.steps` turns it into
the typed DSPy signatures of the four TarGEN steps. A seed is plain text, or a structured seed (a
word with its senses, a pair of subjects) kept as JSON text; fields that code computes (offsets, span
indices) are declared `computed` and filled in by the task's `postprocess` hook.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from typing_extensions import TypedDict

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
        "attributes",
        "constraints",
        "example",
        "critique",
        "flawed",
        "before_reflection",
        "critiques",
        "before_harder",
        "label_description",
        "solution_code",
        "verified_answer",
        "relabeled_by_code",
        "passages",
        "grounding",
    }
)
# Spec keys added after specs were first hashed: hashed only when set (see TaskSpec.hash).
OPTIONAL_KEYS = ("attributes", "constraints", "label_type", "label_description", "rationale_field")
UNHASHED_KEYS = ("downstream",)  # shape no prompt: runs and compiled programs stay valid when they change
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_REFERENCE = re.compile(r"^\$([a-z][a-z0-9_]*)$")
_WORD_KEYS = ("min_words", "max_words")


class InconsistentInstance(ValueError):
    """A postprocess hook cannot make the computed fields consistent with what the model wrote; the
    program turns it into a parse failure, so the engine retries the slot with a new sampling seed."""


class HookFailed(Exception):
    """A postprocess hook raised (anything but InconsistentInstance) or returned something that is not the
    task's fields: that slot fails with this reason and the run goes on."""


class Span(TypedDict):
    """A mention in a text, as in the Hugging Face `super_glue` ReCoRD (`end` exclusive)."""

    text: str
    start: int
    end: int


FieldType = Literal["text", "integer", "texts", "spans"]
FIELD_TYPES: dict[str, Any] = {"text": str, "integer": int, "texts": list[str], "spans": list[Span]}
# The types of an open label (one the model writes, not chosen from a set): a number is an int or a float.
OpenLabelType = Literal["integer", "number", "text"]
OPEN_LABEL_TYPES: dict[str, Any] = {"integer": int, "number": float, "text": str}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldSpec(_Frozen):
    """One field of an instance (or one part of a structured seed). A bare string in YAML is taken as
    its description."""

    description: str = Field(min_length=1)
    type: FieldType = Field(
        default="text", description="text, integer, texts (a list of texts) or spans (text/start/end)."
    )
    choices: tuple[LabelValue, ...] | None = Field(
        default=None, description="If set, the field may only take these values."
    )
    computed: bool = Field(
        default=False,
        description="Filled in by the `postprocess` code, never by the model (offsets, indices); not shown "
        "to the self-corrector.",
    )
    contains: tuple[str | tuple[str, ...], ...] = Field(
        default=(),
        description="The written text must contain these, in order, as whole words in any case: literal "
        "text, `$part` for a part of the seed, or a list of alternatives.",
    )
    one_of: tuple[str, ...] = Field(
        default=(),
        description="The written text must be one of these: literal text, or `$part` for a part of the "
        "seed (each of its items if it is a list).",
    )
    pattern: str | None = Field(default=None, description="A regular expression the whole text must match.")
    min_words: int | None = Field(default=None, ge=1, description="The text has at least this many words.")
    max_words: int | None = Field(default=None, ge=1, description="The text has at most this many words.")

    @model_validator(mode="after")
    def _word_bounds(self) -> FieldSpec:
        if self.word_bounds is None:
            return self
        if self.type != "text" or self.choices or self.constrained or self.computed:
            raise ValueError(
                "min_words/max_words bound free text the model writes (type text, no constraints)"
            )
        low, high = self.word_bounds
        if high is not None and high < low:
            raise ValueError(f"max_words ({high}) is below min_words ({low})")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # Bounds left out are not dumped: a spec written before they existed keeps its hash.
        dumped = handler(self)
        return {k: v for k, v in dumped.items() if k not in _WORD_KEYS or v is not None}

    @property
    def word_bounds(self) -> tuple[int, int | None] | None:
        """(min_words, max_words) when either is set (min defaults to 1), else None."""
        if self.min_words is None and self.max_words is None:
            return None
        return self.min_words or 1, self.max_words

    @property
    def python_type(self) -> Any:
        return Literal[self.choices] if self.choices else FIELD_TYPES[self.type]  # type: ignore[valid-type]

    @property
    def constrained(self) -> bool:
        return bool(self.contains or self.one_of or self.pattern)

    def references(self) -> list[str]:
        """The seed parts this field's constraints name."""
        items = [*self.one_of, *(a for item in self.contains for a in _alternatives(item))]
        return [match.group(1) for item in items if (match := _REFERENCE.match(item))]


def _alternatives(item: str | tuple[str, ...]) -> tuple[str, ...]:
    return (item,) if isinstance(item, str) else item


class LabelSpec(_Frozen):
    value: LabelValue
    means: str = Field(
        min_length=1, description="The constraint an instance must satisfy to carry this label."
    )
    weight: float = Field(default=1.0, gt=0, description="Relative share of the dataset (default: equal).")


def _fields_from_yaml(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {k: {"description": v} if isinstance(v, str) else v for k, v in raw.items()}
    return raw


class SeedSpec(_Frozen):
    description: str = Field(min_length=1, description="What one seed is for this task.")
    field: str | None = Field(
        default=None,
        description="Instance field a plain seed is copied into verbatim (the model writes the rest).",
    )
    parts: dict[str, FieldSpec] | None = Field(
        default=None,
        description="A structured seed's parts; a part named like an instance field is copied into it.",
    )

    _parts_shorthand = field_validator("parts", mode="before")(_fields_from_yaml)


# --- downstream layout: how a classifier reads an instance (analysis only: not part of the spec hash) ---
class DownstreamSpec(_Frozen):
    """Which fields the downstream classifier (`targen analyze`, `analysis.downstream`) reads."""

    inputs: tuple[str, ...] = Field(
        min_length=1, description="Text fields the classifier reads, embedded and crossed pairwise."
    )
    choices: tuple[str, ...] = Field(
        default=(),
        description="A multiple-choice task's alternatives (text fields); the label is the index of the "
        "right one, so the labels must be 0, 1, ...",
    )
    condition: str | None = Field(
        default=None,
        description="A field with `choices` whose every value gets weights of its own (COPA's cause/effect).",
    )


def check_downstream(spec: TaskSpec) -> None:
    """Raise ValueError unless the layout names distinct fields of the spec, of the kinds it needs."""
    layout = spec.downstream
    if layout is None:
        return
    named = [*layout.inputs, *layout.choices, *([layout.condition] if layout.condition else [])]
    for name in named:
        if name not in spec.fields:
            raise ValueError(f"downstream names {name!r}, which is not one of the fields {list(spec.fields)}")
    if len(set(named)) != len(named):
        raise ValueError(f"downstream names a field twice: {named}")
    for name in [*layout.inputs, *layout.choices]:
        if spec.fields[name].type != "text" or spec.fields[name].choices:
            raise ValueError(f"downstream: {name!r} is not a free-text field; a classifier embeds text")
    if layout.condition and not spec.fields[layout.condition].choices:
        raise ValueError(f"downstream.condition {layout.condition!r} must be a field with `choices`")
    if layout.choices and spec.label_values != tuple(range(len(layout.choices))):
        raise ValueError(
            f"downstream.choices: the labels must be the choices' indices {list(range(len(layout.choices)))}"
        )


# ---------------------------------------------------------------------------------------------------------


class TaskSpec(_Frozen):
    """A task, described well enough to generate labeled instances of it without any examples."""

    name: str = Field(pattern=NAME_PATTERN.pattern, description="Short identifier, e.g. `rte`.")
    description: str = Field(min_length=1, description="What the task is, for someone who has never seen it.")
    fields: dict[str, FieldSpec] = Field(min_length=1, description="The instance's fields, in order.")
    label_field: str = Field(default="label", pattern=NAME_PATTERN.pattern)
    labels: tuple[LabelSpec, ...] = Field(
        default=(), description="The closed label set; leave it out for an open label (`label_type`)."
    )
    label_type: OpenLabelType | None = Field(
        default=None,
        description="An open label's type, for a label that is not one of a few values (a math answer): "
        "no label is fixed in advance, the instance step writes it and the self-corrector derives it again.",
    )
    label_description: str | None = Field(
        default=None, min_length=1, description="What an open label is and how it is written."
    )
    rationale_field: str | None = Field(
        default=None,
        description="The field that works an open label out (a math solution): the self-corrector and code "
        "verification do not see it, so that they derive the label on their own.",
    )
    context: str = Field(min_length=1, description="What a context (setting, domain) is for this task.")
    seed: SeedSpec
    correction: str = Field(min_length=1, description="How to check an instance's label.")
    generate: dict[str, FieldSpec] | None = Field(
        default=None,
        description="Fields the model writes, when they differ from the non-computed `fields`; needs "
        "`postprocess`.",
    )
    postprocess: str | None = Field(
        default=None,
        description="`module:function` turning (generated fields and seed parts, label) into the fields.",
    )
    examples: tuple[dict[str, Any], ...] = Field(
        default=(), description="Optional labeled validation examples."
    )
    attributes: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Properties to vary (topic, length, style...), each with its values: instances are "
        "spread evenly over their combinations, for every label alike.",
    )
    constraints: tuple[str, ...] = Field(
        default=(), description="Free-text rules every generation step must follow."
    )
    downstream: DownstreamSpec | None = Field(
        default=None,
        description="Which fields the downstream classifier reads (default: every free-text field).",
    )

    _fields_shorthand = field_validator("fields", "generate", mode="before")(_fields_from_yaml)
    # The postprocess function, bound by `parse_spec` under the caller's trust decision.
    _hook: Postprocess | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        for name in [*self.fields, *(self.generate or {}), *(self.seed.parts or {})]:
            if not NAME_PATTERN.match(name):
                raise ValueError(f"field name {name!r} must be lower_snake_case")
            if name in RESERVED_NAMES or name == self.label_field:
                raise ValueError(f"field name {name!r} is reserved; rename it")
        if self.label_type is not None:
            if self.labels or not self.label_description:
                raise ValueError("an open label (label_type) needs label_description and no `labels` list")
        elif len(self.labels) < 2:
            raise ValueError("labels: give at least 2 labels, or an open label with label_type")
        elif self.label_description is not None or self.rationale_field is not None:
            raise ValueError("label_description and rationale_field are for an open label (label_type)")
        rationale = self.rationale_field
        if rationale is not None and not (
            rationale in self.checked_fields
            and rationale in self.written_fields
            and self.fields[rationale].type == "text"
        ):
            raise ValueError(f"rationale_field {rationale!r} must be a text field the model writes")
        values = [label.value for label in self.labels]
        if len({json.dumps(v) for v in values}) != len(values):
            raise ValueError(f"label values must be unique, got {values}")
        computed = [name for name, field in self.fields.items() if field.computed]
        if self.postprocess is None and (self.generate is not None or computed):
            what = "`generate`" if self.generate is not None else f"computed fields {computed}"
            raise ValueError(f"{what} need `postprocess`, the code that turns model output into fields")
        if any(field.computed for field in (self.generate or {}).values()):
            raise ValueError("`computed` marks instance fields, not the `generate` fields the model writes")
        self._check_seed()
        self._check_constraints()
        self._check_attributes()
        for i, example in enumerate(self.examples):
            try:
                self.validate_example(example)
            except SpecError as exc:
                raise ValueError(f"examples[{i}] {exc}") from None
        return self

    @model_validator(mode="after")
    def _downstream_fields(self) -> TaskSpec:
        check_downstream(self)
        return self

    def _check_seed(self) -> None:
        seed, names = self.seed, list(self.generator_fields)
        if seed.field is not None and seed.parts is not None:
            raise ValueError(
                "seed.field is for a plain seed; a structured seed fills the fields named as its parts"
            )
        if seed.field is not None and seed.field not in names:
            raise ValueError(f"seed.field {seed.field!r} is not one of the fields {names}")
        for name, part in (seed.parts or {}).items():
            if part.type not in ("text", "texts") or part.contains or part.one_of or part.computed:
                raise ValueError(
                    f"seed part {name!r} must be text or texts, without contains/one_of/computed"
                )
            if part.pattern and part.type != "text":
                raise ValueError(f"seed part {name!r}: a pattern constrains a text")
            if name in names and self.generator_fields[name].type != part.type:
                raise ValueError(f"seed part {name!r} and the field it fills must have the same type")

    def _check_constraints(self) -> None:
        parts = self.seed.parts or {}
        for name, field in self.generator_fields.items():
            if not field.constrained:
                continue
            if name in self.seed_fields or field.type != "text" or field.choices:
                raise ValueError(f"{name!r}: contains/one_of/pattern constrain free text the model writes")
            if sum(map(bool, (field.contains, field.one_of, field.pattern))) > 1:
                raise ValueError(f"{name!r}: use one of contains, one_of and pattern")
            for ref in field.references():
                if ref not in parts:
                    raise ValueError(f"{name!r} refers to ${ref}, which is not a seed part {list(parts)}")
                if field.contains and parts[ref].type != "text":
                    raise ValueError(f"{name!r} can only contain seed parts of type text, not {ref!r}")
        for name, field in {**self.generator_fields, **parts}.items():
            if field.pattern is not None:
                try:
                    re.compile(field.pattern)
                except re.error as exc:
                    raise ValueError(f"{name!r}: pattern is not a regular expression ({exc})") from None

    def _check_attributes(self) -> None:
        for name, values in self.attributes.items():
            if not NAME_PATTERN.match(name):
                raise ValueError(f"attribute name {name!r} must be lower_snake_case")
            if not values or not all(value.strip() for value in values):
                raise ValueError(f"attribute {name!r} needs at least one non-empty value")
            if len(set(values)) != len(values):
                raise ValueError(f"attribute {name!r} lists a value twice: {list(values)}")
        if any(not rule.strip() for rule in self.constraints):
            raise ValueError("constraints must not be empty")

    @property
    def generator_fields(self) -> dict[str, FieldSpec]:
        """What the label-constrained step produces: `generate`, or else the non-computed fields."""
        if self.generate is not None:
            return dict(self.generate)
        return {name: field for name, field in self.fields.items() if not field.computed}

    @property
    def seed_fields(self) -> list[str]:
        """Generator fields filled from the seed rather than written by the model."""
        if self.seed.parts is not None:
            return [name for name in self.seed.parts if name in self.generator_fields]
        return [] if self.seed.field is None else [self.seed.field]

    @property
    def written_fields(self) -> dict[str, FieldSpec]:
        """The fields the generator writes: the generated fields less those the seed fills."""
        return {k: v for k, v in self.generator_fields.items() if k not in self.seed_fields}

    @property
    def checked_fields(self) -> dict[str, FieldSpec]:
        """The fields the self-corrector reads: all but the computed ones."""
        return {name: field for name, field in self.fields.items() if not field.computed}

    @property
    def seed_word_bounds(self) -> tuple[int, int | None] | None:
        """A plain seed's word bounds: those of the field it is copied into, if that field has any."""
        if self.seed.parts is not None or self.seed.field is None:
            return None
        return self.generator_fields[self.seed.field].word_bounds

    @property
    def open_label(self) -> bool:
        """The label is written by the model (a number, a text), not chosen first from a closed set."""
        return self.label_type is not None

    @property
    def correction_fields(self) -> dict[str, FieldSpec]:
        """The fields the self-corrector reads: the checked ones, less an open label's rationale."""
        return {name: field for name, field in self.checked_fields.items() if name != self.rationale_field}

    @property
    def label_values(self) -> tuple[LabelValue, ...]:
        """The closed label set; empty for an open label."""
        return tuple(label.value for label in self.labels)

    @property
    def label_annotation(self) -> Any:
        """The label's Python type: one of the label values, or the open label's type."""
        if self.label_type is not None:
            return OPEN_LABEL_TYPES[self.label_type]
        return Literal[self.label_values]  # type: ignore[valid-type]

    def meaning(self, value: LabelValue) -> str:
        return next(label.means for label in self.labels if label.value == value)

    @property
    def label_meanings(self) -> dict[str, str]:
        return {label_text(label.value): label.means for label in self.labels}

    def postprocessor(self) -> Postprocess | None:
        """The postprocess function: the one `parse_spec` bound, else a shipped or registered hook (a
        spec built any other way is not trusted to import code)."""
        if self.postprocess is None:
            return None
        if self._hook is None:
            self.bind_hook(trust_code=False)
        return self._hook

    def bind_hook(self, trust_code: bool) -> None:
        """Resolve `postprocess` now (a SpecError if it may not run or is missing), not mid-run."""
        from targen_dspy.signatures.hook_policy import resolve_hook

        if self.postprocess is not None:
            self._hook = resolve_hook(self.postprocess, trust_code)

    def check_fields(self, fields: Any) -> dict[str, Any]:
        """`fields` as the task's fields in spec order, or a SpecError unless it is a mapping with every
        field of its type (a postprocess hook's result is checked so, being someone's code)."""
        if not isinstance(fields, Mapping):
            raise SpecError(
                f"a mapping of the fields {list(self.fields)} was expected, got {type(fields).__name__}"
            )
        try:
            self._fields_type.validate_python(dict(fields))
        except ValidationError as exc:
            raise SpecError(_first_error(exc)) from None
        return {name: fields[name] for name in self.fields}

    def seed_text(self, parts: Mapping[str, Any]) -> str:
        """A structured seed as the engine stores and plans it: JSON of its parts in spec order, so that
        equal seeds are equal strings."""
        return json.dumps({name: parts[name] for name in self.seed.parts or {}}, ensure_ascii=False)

    def seed_parts(self, seed: str) -> dict[str, Any]:
        """The parts of a structured seed stored by `seed_text`."""
        names = list(self.seed.parts or {})
        try:
            parts = json.loads(seed)
        except json.JSONDecodeError:
            parts = None
        if not isinstance(parts, dict) or sorted(parts) != sorted(names):
            raise SpecError(f"seed {seed[:60]!r} is not a {self.name} seed: a JSON object with parts {names}")
        return parts

    @property
    def _field_columns(self) -> dict[str, Any]:
        return {
            name: _exactly(field.choices) if field.choices else FIELD_TYPES[field.type]
            for name, field in self.fields.items()
        }

    @cached_property
    def _fields_type(self) -> TypeAdapter:
        return _strict_row(f"{self.name}_fields", self._field_columns)

    @cached_property
    def _example_type(self) -> TypeAdapter:
        label = _open_label(self.label_type) if self.label_type is not None else _exactly(self.label_values)
        return _strict_row(f"{self.name}_example", {**self._field_columns, self.label_field: label})

    def validate_example(self, row: Mapping[str, Any]) -> None:
        """Raise SpecError unless `row` is an instance of the task: each field with its type (strictly:
        no "1" for 1, no 1 for true) and a label from the label set. Other keys (`idx`) are ignored."""
        try:
            self._example_type.validate_python(dict(row))
        except ValidationError as exc:
            raise SpecError(_first_error(exc)) from None

    @property
    def hash(self) -> str:
        """Content hash: two specs with the same meaning have the same hash, whatever their file says.
        Optional keys left empty are not hashed, so a spec written before they existed keeps its hash."""
        unset = {name for name in OPTIONAL_KEYS if not getattr(self, name)}
        content = self.model_dump_json(exclude={*unset, *UNHASHED_KEYS})
        return hashlib.sha256(content.encode()).hexdigest()[:16]


def _strict_row(name: str, columns: dict[str, Any]) -> TypeAdapter:
    row = TypedDict(name, columns)  # type: ignore[misc]
    row.__pydantic_config__ = ConfigDict(strict=True)  # type: ignore[attr-defined]
    return TypeAdapter(row)


def _first_error(exc: ValidationError) -> str:
    """The first problem of a row, in one line: where, what, and what was given."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    got = "" if first["type"] == "missing" else f", got {first['input']!r}"[:200]
    return f"{where}: {first['msg']}{got}"


def _exactly(values: tuple[LabelValue, ...]) -> Any:
    """One of `values`, compared with its type: for a Literal, true == 1 and 1 is a valid `true`."""

    def check(value: Any) -> Any:
        if not any(value == v and type(value) is type(v) for v in values):
            raise ValueError(f"Input should be one of {', '.join(json.dumps(v) for v in values)}")
        return value

    return Annotated[Any, AfterValidator(check)]


def _open_label(label_type: str) -> Any:
    """An open label's column: strictly its type, except that a number may be written as an integer."""
    return int | float if label_type == "number" else OPEN_LABEL_TYPES[label_type]


def label_text(value: LabelValue) -> str:
    """How a label is shown to the model: strings as they are, numbers and booleans as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def parse_spec(data: Any, source: str = "spec", trust_code: bool = False) -> TaskSpec:
    """Validate already-parsed YAML into a TaskSpec, or raise a one-line SpecError. Its postprocess hook
    is bound now: a shipped or registered hook, or with `trust_code` any importable function."""
    from targen_dspy.inputs import check_bounded, one_line

    if not isinstance(data, dict):
        raise SpecError(f"{source}: a task spec is a YAML mapping (name, description, fields, labels, ...)")
    check_bounded(data, source, SpecError)  # before pydantic expands a YAML alias bomb
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(p if isinstance(p, str) and p.isidentifier() else repr(p) for p in first["loc"])
        # A key or value the user wrote may hold line breaks or be huge: the message stays one line.
        message = one_line(f"{where or 'spec'}: {first['msg']}")
        raise SpecError(f"{source}: {message} (see `targen tasks` for working specs)") from None
    try:
        spec.bind_hook(trust_code)
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from None
    return spec


def load_spec_file(path: Path, trust_code: bool = False) -> TaskSpec:
    from targen_dspy.inputs import MB, read_text

    try:
        # A spec is a few KB; the cap keeps pure-Python YAML parsing of a stray big file short.
        data = yaml.safe_load(read_text(path, "spec", SpecError, max_bytes=MB))
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}:{where} is not valid YAML; check indentation and quoting") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise SpecError(f"spec {path} is nested too deeply; a spec is a few levels of mappings") from None
    return parse_spec(data, source=str(path), trust_code=trust_code)
