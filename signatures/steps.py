"""The typed DSPy signatures of TarGEN's four steps.

Each docstring is the step's instruction (the text a teleprompter rewrites); the task's own words come
in through input fields, so one instruction serves every task. `seed_signature`, `instance_signature`
and `correction_signature` add the task's seed parts, instance fields and label set as typed fields;
`constrain` narrows the instance step's field types for one seed (the word a sentence must contain,
the entities an answer is chosen from), which a JSON-schema grammar then enforces while decoding.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import dspy
import pydantic
from pydantic_core import core_schema

from targen_dspy.signatures.labels import label_policy
from targen_dspy.signatures.spec import FIELD_TYPES, FieldSpec, TaskSpec

# Characters a constrained field may contain: no quote or backslash (the grammar writes no JSON escapes)
# and no brackets (DSPy's JSON repair would read "[x]" inside a text as a list).
TEXT_CHAR = r'[^"\\\[\]{}\x00-\x1f]'
# A character that ends a word: the boundary `contains` puts around each piece.
_BOUNDARY = r'[^"\\\[\]{}\x00-\x1fA-Za-z0-9]'
GAP_CHARS = 60  # longest stretch of free text between the pieces of a `contains` field


def _text_matching(pattern: str) -> type[str]:
    """A text type whose JSON schema and validation carry `pattern`. (`Annotated[str, StringConstraints]`
    would not do: pydantic moves the constraint into the field's metadata, and DSPy builds the output
    schema and parses from the bare annotation.)"""

    def schema(cls: type, source: Any, handler: pydantic.GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.str_schema(pattern=pattern)

    return type("ConstrainedText", (str,), {"__get_pydantic_core_schema__": classmethod(schema)})


GRAMMAR_PATTERN = "x-grammar-pattern"


def _steered_text(pattern: str) -> type[str]:
    """A text type whose JSON schema carries `pattern` as a hint for the embedded model's grammar only
    (`backends.local.bounded_schema` applies it); parsing accepts any text, so a remote model whose
    answer does not match is not failed for it."""

    def json_schema(cls: type, core: core_schema.CoreSchema, handler: pydantic.GetJsonSchemaHandler) -> Any:
        return {**handler(core), GRAMMAR_PATTERN: pattern}

    return type(
        "SteeredText",
        (str,),
        {
            "__get_pydantic_core_schema__": classmethod(
                lambda cls, source, handler: core_schema.str_schema()
            ),
            "__get_pydantic_json_schema__": classmethod(json_schema),
        },
    )


# Contexts and plain seeds start with a letter: the 135M model otherwise writes outline numbers
# ("1.1.2.1"), dates or lone punctuation, and every instance built on them inherits the junk.
ContextPhrase = _steered_text(f"^[A-Za-z]{TEXT_CHAR}{{2,80}}$")
SeedText = _steered_text(f"^[A-Za-z]{TEXT_CHAR}{{2,299}}$")


class ProposeContexts(dspy.Signature):
    """Propose distinct settings in which examples of the task could naturally occur.

    Each context is a short phrase (a domain, place, community, genre or situation). Cover very different
    areas of life, and do not repeat or rephrase any context listed in `avoid`."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    context_kind: str = dspy.InputField(desc="What a context means for this task")
    avoid: list[str] = dspy.InputField(desc="Contexts already chosen")
    count: int = dspy.InputField(desc="How many new contexts to propose")
    contexts: list[ContextPhrase] = dspy.OutputField(desc="The new contexts, one short phrase each")


class WriteSeeds(dspy.Signature):
    """Write new seeds of the kind described, set in the given setting: concrete, self-contained and
    different from each other and from `avoid`. A seed is raw material for a later example, not an example."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    seed_kind: str = dspy.InputField(desc="What one seed is for this task")
    setting: str = dspy.InputField(desc="The context every seed must be set in")
    avoid: list[str] = dspy.InputField(desc="Seeds already written")
    count: int = dspy.InputField(desc="How many new seeds to write")
    seeds: list[SeedText] = dspy.OutputField(desc="The new seeds")


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


class WriteAnsweredInstance(dspy.Signature):
    """Build one example of the task around the seed, then give its correct label.

    No label is chosen in advance: write natural, self-contained fields in the setting, then work out the
    label from what you wrote, so that a careful reader who knows the task arrives at exactly this label.
    Do not copy the seed into fields that should differ from it."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    setting: str = dspy.InputField(desc="The context the example is set in")
    seed: str = dspy.InputField(desc="The raw material to build on")
    label_description: str = dspy.InputField(desc="What the label is and how it is written")


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


class DeriveLabel(dspy.Signature):
    """Check an example of the task by working out its label yourself, from scratch.

    Read the example as an annotator who follows the guidelines literally. The proposed label comes from
    the example's writer and may be wrong: derive the label from the example's fields alone, then give
    the label you derived, whether or not it matches the proposed one."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    correction_guidelines: str = dspy.InputField(desc="How annotators decide the label")
    label_description: str = dspy.InputField(desc="What the label is and how it is written")
    proposed_label: str = dspy.InputField(desc="The label the writer gave")
    reasoning: str = dspy.OutputField(desc="The short derivation of the label")


class CritiqueInstance(dspy.Signature):
    """Review an example of the task that was written to have the target label, and decide whether it
    has a flaw.

    A flaw is what a careful annotator would object to: the example does not satisfy the target label's
    meaning, or fits another label's meaning as well; a field contradicts another, is not natural and
    self-contained, or does not do what its description asks. Name the flaw precisely; do not invent one
    in a sound example."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    label_meanings: dict[str, str] = dspy.InputField(desc="Each label and what it requires")
    target_label: str = dspy.InputField(desc="The label the example must have")
    critique: str = dspy.OutputField(desc="The flaw in one or two sentences, or that there is none")
    flawed: bool = dspy.OutputField(desc="Whether the example has to be rewritten")


class ReviseInstance(dspy.Signature):
    """Rewrite the example so that the flaw the critique names is gone and its correct label is exactly
    the target label.

    Change only what the flaw requires: keep the setting and whatever is sound, and write each field as
    its description asks."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    target_label: str = dspy.InputField(desc="The label the example must have")
    target_label_meaning: str = dspy.InputField(desc="What an example must satisfy to have this label")
    example: dict[str, Any] = dspy.InputField(desc="The example as it is now, field by field")
    critique: str = dspy.InputField(desc="What is wrong with it")


class HardenInstance(dspy.Signature):
    """Rewrite the example so that it is harder to label, while its correct label stays exactly the
    target label.

    A careful reader must still assign the target label and no other, but only after reading closely:
    make the decision subtler (a detail to infer rather than a restatement, wording that does not give
    the answer away, a cue toward another label that does not hold up), not merely longer. Keep the
    setting and write each field as its description asks."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    label_meanings: dict[str, str] = dspy.InputField(desc="Each label and what it requires")
    target_label: str = dspy.InputField(desc="The label the example must keep")
    target_label_meaning: str = dspy.InputField(desc="What an example must satisfy to have this label")
    example: dict[str, Any] = dspy.InputField(desc="The example as it is now, field by field")


class CritiqueAnsweredInstance(dspy.Signature):
    """Review an example of the task and the label its writer gave it, and decide whether it has a flaw.

    Work the label out yourself from the example first. A flaw is what a careful annotator would object
    to: the given label is not the one the example leads to, the example cannot be answered from its
    fields alone, a field contradicts another, is not natural and self-contained, or does not do what its
    description asks. Name the flaw precisely; do not invent one in a sound example."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    label_description: str = dspy.InputField(desc="What the label is and how it is written")
    proposed_label: str = dspy.InputField(desc="The label the writer gave")
    critique: str = dspy.OutputField(desc="The flaw in one or two sentences, or that there is none")
    flawed: bool = dspy.OutputField(desc="Whether the example has to be rewritten")


class ReviseAnsweredInstance(dspy.Signature):
    """Rewrite the example so that the flaw the critique names is gone, then work out its label again
    from the fields you wrote.

    Change only what the flaw requires: keep the setting and whatever is sound, and write each field as
    its description asks."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    label_description: str = dspy.InputField(desc="What the label is and how it is written")
    example: dict[str, Any] = dspy.InputField(desc="The example and its label as they are now")
    critique: str = dspy.InputField(desc="What is wrong with it")


class HardenAnsweredInstance(dspy.Signature):
    """Rewrite the example so that it is harder, then work out its label again from the fields you wrote.

    Harder means more careful work for the reader (one more step, a detail to infer, a quantity that is
    easy to misread), not merely a longer text; the example must stay natural, self-contained and have
    exactly one correct label. Keep the setting and write each field as its description asks."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    label_description: str = dspy.InputField(desc="What the label is and how it is written")
    example: dict[str, Any] = dspy.InputField(desc="The example and its label as they are now")


def seed_signature(spec: TaskSpec) -> type[dspy.Signature]:
    """WriteSeeds; for a structured seed, each seed is an object of its parts.

    A part's choices and pattern are in the schema (the grammar) only, and a missing part parses as
    empty: the seed step drops a seed that breaks them, instead of failing the whole list when the
    model's answer is cut off in its last seed."""
    if spec.seed.parts is None:
        return WriteSeeds
    parts: dict[str, Any] = {}
    for name, part in spec.seed.parts.items():
        schema: dict[str, Any] = {}
        if part.choices:
            schema["enum"] = list(part.choices)
        if part.pattern:
            schema["pattern"] = anchored(part.pattern)
        kind = FIELD_TYPES[part.type]
        parts[name] = (
            kind,
            pydantic.Field(default_factory=kind, description=part.description, json_schema_extra=schema),
        )
    seed_type = pydantic.create_model(f"{spec.name.title().replace('_', '')}Seed", **parts)
    return WriteSeeds.with_updated_fields("seeds", type_=list[seed_type])


@functools.lru_cache(maxsize=64)
def at_most(signature: type[dspy.Signature], name: str, count: int) -> type[dspy.Signature]:
    """`signature` with its list output `name` allowed at most `count` items by the JSON schema (the
    grammar), so that a small model asked for two seeds does not write eight; parsing takes any number.
    Cached: building a signature costs about as much client CPU as the model call it is for."""
    item = get_args(signature.output_fields[name].annotation)[0]

    def json_schema(cls: type, core: core_schema.CoreSchema, handler: pydantic.GetJsonSchemaHandler) -> Any:
        return {**handler(core), "maxItems": count}

    bounded = type(
        "BoundedList",
        (list,),
        {
            "__get_pydantic_core_schema__": classmethod(lambda cls, source, handler: handler(list[item])),
            "__get_pydantic_json_schema__": classmethod(json_schema),
        },
    )
    return signature.with_updated_fields(name, type_=bounded)


# The step signatures each kind of label builds on (`labels.LabelPolicy.kind`): an open label is written
# by the model, last, after the fields it is worked out from, and judged by deriving it again.
STEP_BASES: dict[str, dict[str, type[dspy.Signature]]] = {
    "closed": {
        "instance": WriteInstance,
        "correction": CorrectLabel,
        "critique": CritiqueInstance,
        "revise": ReviseInstance,
        "harder": HardenInstance,
    },
    "open": {
        "instance": WriteAnsweredInstance,
        "correction": DeriveLabel,
        "critique": CritiqueAnsweredInstance,
        "revise": ReviseAnsweredInstance,
        "harder": HardenAnsweredInstance,
    },
}


def _base(spec: TaskSpec, step: str) -> type[dspy.Signature]:
    return STEP_BASES[label_policy(spec).kind][step]


def _written(spec: TaskSpec, signature: type[dspy.Signature]) -> type[dspy.Signature]:
    """`signature` answering with the fields the instance step writes and, for an open label, the label."""
    for name, field in spec.written_fields.items():
        signature = signature.append(name, dspy.OutputField(desc=field.description), type_=field.python_type)
    if label_policy(spec).open:
        label = dspy.OutputField(desc=spec.label_description)
        signature = signature.append(spec.label_field, label, type_=spec.label_annotation)
    return signature


def instance_signature(spec: TaskSpec) -> type[dspy.Signature]:
    """WriteInstance with one typed output field per field the model writes for this task; a structured
    seed comes in as one input field per part instead of `seed`. For an open label, WriteAnsweredInstance,
    which writes the label last, after the fields it is worked out from."""
    signature = _base(spec, "instance")
    if spec.seed.parts is not None:
        signature = signature.delete("seed")
        after_setting = list(signature.input_fields).index("setting") + 1
        for i, (name, part) in enumerate(spec.seed.parts.items()):
            field = dspy.InputField(desc=part.description)
            signature = signature.insert(after_setting + i, name, field, type_=part.python_type)
    return _written(spec, signature)


def constrain(signature: type[dspy.Signature], spec: TaskSpec, parts: dict[str, Any]) -> type[dspy.Signature]:
    """`signature` (the instance step's, as tuned) with each constrained field's type narrowed for the
    seed with these `parts`: a regular expression for `contains`/`pattern`, the items for `one_of`."""
    for name, field in spec.written_fields.items():
        if field.constrained:
            signature = signature.with_updated_fields(name, type_=constrained_type(field, parts))
    return signature


def constrained_type(field: FieldSpec, parts: dict[str, Any]) -> Any:
    def values(items: tuple[str, ...]) -> list[str]:
        """Literal items as they are, `$part` as the part's text or each of its list's items."""
        out = []
        for item in items:
            value = parts[item[1:]] if item.startswith("$") else item
            out += value if isinstance(value, list) else [value]
        return list(dict.fromkeys(out))

    if field.one_of:
        return Literal[tuple(values(field.one_of))]  # type: ignore[misc]
    if field.contains:
        pattern = contains_pattern(
            [values((item,) if isinstance(item, str) else item) for item in field.contains]
        )
    else:
        pattern = anchored(field.pattern or "")
    return _text_matching(pattern)


def contains_pattern(pieces: list[list[str]]) -> str:
    """A regular expression for a text that holds one of the alternatives of each piece, in order, as
    whole words (as given, or with their first letter's case changed: "The trophy" at the start of a
    sentence), with at most GAP_CHARS free characters around and between them.

    Only regex syntax llama.cpp's schema-to-grammar converter understands (no lookarounds, no `(?:`)."""
    gap = f"{TEXT_CHAR}{{0,{GAP_CHARS}}}"
    words = [
        "(" + "|".join(_literal(v) for a in piece for v in _first_letter_cases(a)) + ")" for piece in pieces
    ]
    return f"^({gap}{_BOUNDARY})?" + f"{_BOUNDARY}({gap}{_BOUNDARY})?".join(words) + f"({_BOUNDARY}{gap})?$"


def anchored(pattern: str) -> str:
    """A whole-text pattern in the `^...$` form llama.cpp's grammar converter requires."""
    return f"^({pattern.removeprefix('^').removesuffix('$')})$"


def _first_letter_cases(text: str) -> list[str]:
    return list(dict.fromkeys([text, text[:1].upper() + text[1:], text[:1].lower() + text[1:]]))


def _literal(text: str) -> str:
    """`text` as a regular expression; punctuation as a one-character class, the one escape that reads
    the same in Python, Rust (pydantic) and GBNF."""
    return "".join(
        char
        if char.isalnum() or char == " "
        else f"[\\x{ord(char):02x}]"
        if ord(char) < 0x100
        else f"[\\u{ord(char):04x}]"
        for char in text
    )


def _inputs_before(
    signature: type[dspy.Signature], anchor: str, fields: Mapping[str, FieldSpec]
) -> type[dspy.Signature]:
    """`signature` with the instance's `fields` as inputs just before its input `anchor` (the label shown
    to the judge), so that a judge reads the example before the label it is asked about."""
    for name, field in fields.items():
        index = list(signature.input_fields).index(anchor)
        signature = signature.insert(
            index, name, dspy.InputField(desc=field.description), type_=field.python_type
        )
    return signature


def correction_signature(spec: TaskSpec) -> type[dspy.Signature]:
    """CorrectLabel reading the instance's non-computed fields (before the proposed label) and answering
    with a label from the task's label set; for an open label, DeriveLabel, reading the same fields less
    the label's rationale and answering with the open label's type."""
    signature = _inputs_before(_base(spec, "correction"), "proposed_label", spec.correction_fields)
    corrected = dspy.OutputField(desc="The label the example deserves")
    return signature.append("corrected_label", corrected, type_=spec.label_annotation)


def critique_signature(spec: TaskSpec) -> type[dspy.Signature]:
    """CritiqueInstance reading the instance's non-computed fields (before the target label); for an open
    label, CritiqueAnsweredInstance, which reads the label the model wrote."""
    shown = next(iter(label_policy(spec).shown("")))  # target_label, or an open label's proposed_label
    return _inputs_before(_base(spec, "critique"), shown, spec.checked_fields)


def rewrite_signature(spec: TaskSpec, harder: bool) -> type[dspy.Signature]:
    """A rewriting step, self-reflection's revision or the difficulty step, answering with the fields the
    instance step writes, so that the seed's fields stay as they are and computed fields are computed
    again. An open label is written again too, last (ReviseAnsweredInstance, HardenAnsweredInstance)."""
    return _written(spec, _base(spec, "harder" if harder else "revise"))


def with_options(
    signature: type[dspy.Signature],
    constraints: Sequence[str] = (),
    attributes: Mapping[str, str] | None = None,
) -> tuple[type[dspy.Signature], dict[str, Any]]:
    """`signature` with the run's attribute values and constraints as typed inputs, and those inputs;
    each only when there is one, so that a prompt without them is exactly the plain step's. Added at call
    time, after the tuned instructions and demos, like `constrain`."""
    inputs: dict[str, Any] = {}
    if attributes:
        inputs["attributes"] = dict(attributes)
    if constraints:
        inputs["constraints"] = list(constraints)
    return _option_fields(signature, bool(attributes), bool(constraints)), inputs


@functools.lru_cache(maxsize=64)
def _option_fields(
    signature: type[dspy.Signature], attributes: bool, constraints: bool
) -> type[dspy.Signature]:
    """The fields of `with_options`, which depend on which options a call has, not on their values:
    cached, as every call of a run with options would otherwise build the same signature again."""
    if attributes:
        field = dspy.InputField(desc="Properties the example must have: each attribute and its value")
        signature = signature.append("attributes", field, type_=dict[str, str])
    if constraints:
        field = dspy.InputField(desc="Rules from the dataset's author that every output must follow")
        signature = signature.append("constraints", field, type_=list[str])
    return signature


def step_signatures(spec: TaskSpec) -> dict[str, type[dspy.Signature]]:
    """The signature of each step for this task, by step."""
    return {
        "contexts": ProposeContexts,
        "seeds": seed_signature(spec),
        "instance": instance_signature(spec),
        "correction": correction_signature(spec),
    }
