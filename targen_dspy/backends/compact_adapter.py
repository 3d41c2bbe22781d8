"""A terse JSON adapter for very small models.

DSPy's JSONAdapter explains its message structure at length; a 135M model copies that text (field
names, format notes) into its answers. This adapter sends only the instruction, the inputs as
`Name: value` lines and a one-line JSON answer template; parsing is JSONAdapter's.

What only the small model needs stays here, out of the signatures that every model is sent
(`LocalLevers`, each on by default; the switches are for measuring them, `experiments/embedded_quality.py`):

- examples: one formatting example per step before the request, the "one formatting example" of Lee et
  al. (2023), *Making Large Language Models Better Data Creators*: a task-agnostic one for the contexts
  and seeds steps (a structured seed: the parts of the spec's first example that has them), and for the
  instance step the spec's first example of the label asked for. Without one, the model answers
  with one-word contexts and seeds ("true", "Alejandro") and restates label meanings as fields.
- word_bounds: the word bounds of each field (the spec's `min_words`/`max_words`; contexts, and seeds
  that fill no bounded field, at least two words) added to the answer's JSON schema as `x-words`, which
  the embedded engine's grammar enforces (`backends.local.bounded_schema`).
- one_seed: the seeds step asks for one seed per call: in a list, the model's later items degenerate
  into names and numbering ("1.1.1").
- hide_avoid: the contexts and seeds steps are not shown the items to avoid. The model copies them
  instead (one seed per context in three calls; three with the list hidden), and the program drops
  repeats and asks again with a new sampling seed either way.
- no_copy: the answer may not repeat a run of COPY_RUN text tokens of its prompt or of itself (`x-no-copy`
  in the schema, a logits penalty of the embedded engine). Without it the model writes the premise
  again as the hypothesis, and loops ("the cat, the cat, the cat") until the length limit.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

import dspy
import pydantic
from dspy.adapters.utils import format_field_value

from targen_dspy.backends.local import NO_COPY, WORDS
from targen_dspy.signatures.spec import TaskSpec, label_text

CONTEXT_WORDS = (2, 12)
SEED_WORDS = (2, 40)
# Tokens in the longest run an answer may share with its prompt: about five words. Shorter runs are
# how text refers to what it is about ("the kitchen appliance", an entity's name).
COPY_RUN = 6

# Formatting examples for the contexts and seeds steps, from a task unlike any in the catalogue, so that
# they show the shape of an answer (several-word settings, one full sentence per seed) and no content.
_REVIEWS = (
    "Sentiment. Each example is a short product review, and the label says whether the buyer was pleased."
)
CONTEXTS_EXAMPLE = (
    {
        "task_description": _REVIEWS,
        "context_kind": "A kind of product, or a place where people write reviews.",
        "avoid": [],
        "count": 3,
    },
    {"contexts": ["kitchen appliances bought online", "a family hotel by the sea", "second-hand bicycles"]},
)
SEEDS_EXAMPLE = (
    {
        "task_description": _REVIEWS,
        "seed_kind": "One specific thing a buyer could say about a product, as a full sentence.",
        "setting": "kitchen appliances bought online",
        "avoid": [],
        "count": 1,
    },
    {"seeds": ["The lid of the blender cracked after two weeks of daily use."]},
)


@dataclass(frozen=True)
class LocalLevers:
    examples: bool = True
    word_bounds: bool = True
    one_seed: bool = True
    hide_avoid: bool = True
    no_copy: bool = True


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


class CompactJSONAdapter(dspy.JSONAdapter):
    def __init__(self, spec: TaskSpec | None = None, levers: LocalLevers = LocalLevers()):
        super().__init__()
        self.spec = spec
        self.levers = levers

    def format_system_message(self, signature: type[dspy.Signature]) -> str:
        return textwrap.dedent(signature.instructions).strip()

    def format(
        self, signature: type[dspy.Signature], demos: list[dict[str, Any]], inputs: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if self.levers.one_seed and "seeds" in signature.output_fields and "count" in inputs:
            inputs = {**inputs, "count": 1}
        if self.levers.hide_avoid and inputs.get("avoid"):
            inputs = {**inputs, "avoid": []}
        messages = super().format(signature, demos, inputs)
        example = self._formatting_example(signature, inputs) if self.levers.examples else None
        if example is not None:
            shown, answer = example
            content = self.format_user_message_content(signature, shown, main_request=True)
            messages[1:1] = [
                {"role": "user", "content": content},
                {"role": "assistant", "content": json.dumps(answer, ensure_ascii=False)},
            ]
        return messages

    def _formatting_example(
        self, signature: type[dspy.Signature], inputs: dict[str, Any]
    ) -> tuple[dict, dict] | None:
        """(inputs, answer) of the step's formatting example, or None for a step without one. The
        instance step is shown the spec's first example of the label asked for (of any label if it has
        none): shown an entailment while asked for a contradiction, the small model writes the former."""
        outputs = set(signature.output_fields)
        if outputs == {"contexts"}:
            return CONTEXTS_EXAMPLE
        if outputs == {"seeds"}:
            plain = self.spec is None or self.spec.seed.parts is None
            return SEEDS_EXAMPLE if plain else self._structured_seed_example()
        spec = self.spec
        if spec is None or not spec.examples or "target_label" not in signature.input_fields:
            return None
        target = inputs.get("target_label")
        example = next(
            (e for e in spec.examples if label_text(e.get(spec.label_field)) == target), spec.examples[0]
        )
        if not outputs <= set(example):
            return None  # the model writes fields the examples do not have (COPA's `generate`)
        label = example[spec.label_field]
        shown = {name: example[name] for name in signature.input_fields if name in example}
        if spec.seed.field is not None and spec.seed.field in example:
            shown["seed"] = example[spec.seed.field]
        shown.update(target_label=label_text(label), target_label_meaning=spec.meaning(label))
        return shown, {name: example[name] for name in signature.output_fields}

    def _structured_seed_example(self) -> tuple[dict, dict] | None:
        """A structured seed's example: the parts of the spec's first example that has them all (MultiRC's
        paragraph and question; without it the model wrote letters joined by hyphens as a paragraph), or
        None where no example has them (WiC's senses are not fields of its examples)."""
        spec = self.spec
        parts = list(spec.seed.parts or ())
        example = next((e for e in spec.examples if all(part in e for part in parts)), None)
        if example is None:
            return None
        shown = {"task_description": spec.description, "seed_kind": spec.seed.description,
                 "setting": "everyday life", "avoid": [], "count": 1}  # fmt: skip
        return shown, {"seeds": [{part: example[part] for part in parts}]}

    def format_user_message_content(
        self,
        signature: type[dspy.Signature],
        inputs: dict[str, Any],
        prefix: str = "",
        suffix: str = "",
        main_request: bool = False,
    ) -> str:
        lines = [prefix] if prefix else []
        for name, field in signature.input_fields.items():
            if name in inputs:
                lines.append(f"{_title(name)}: {format_field_value(field_info=field, value=inputs[name])}")
        if main_request:
            lines.append(self.user_message_output_requirements(signature))
        if suffix:
            lines.append(suffix)
        return "\n".join(lines)

    def user_message_output_requirements(self, signature: type[dspy.Signature]) -> str:
        outputs = signature.output_fields.items()
        shape = ", ".join(f'"{name}": {_placeholder(field.annotation)}' for name, field in outputs)
        # Output descriptions are left out: small models copy them in as answers.
        return f"Reply with JSON only, shaped like {{{shape}}}"

    def _prepare_response_format(self, lm: Any, lm_kwargs: dict[str, Any], signature: Any) -> None:
        super()._prepare_response_format(lm, lm_kwargs, signature)
        model = lm_kwargs.get("response_format")
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            return
        schema = model.model_json_schema()
        if self._add_bounds(schema, signature):  # else the request stays exactly DSPy's
            lm_kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": model.__name__, "schema": schema, "strict": True},
            }

    def _add_bounds(self, schema: dict[str, Any], signature: Any) -> bool:
        """Word bounds (and one seed per call, and the no-copy run) written into the answer's schema;
        whether any were."""
        properties, changed = schema.get("properties", {}), False
        if self.levers.no_copy:
            schema[NO_COPY] = COPY_RUN
            changed = True
        if self.levers.one_seed and "seeds" in properties:
            properties["seeds"]["maxItems"] = 1
            changed = True
        if not self.levers.word_bounds:
            return changed
        bounds = {"contexts": CONTEXT_WORDS}
        if self.spec is not None:
            if self.spec.seed.parts is None:
                bounds["seeds"] = self.spec.seed_word_bounds or SEED_WORDS
            bounds.update(
                (name, field.word_bounds)
                for name, field in self.spec.generator_fields.items()
                if field.word_bounds is not None
            )
        for name, (low, high) in bounds.items():
            node = properties.get(name)
            if node is None:
                continue
            node = node.get("items", node) if node.get("type") == "array" else node
            if node.get("type") == "string":
                node[WORDS] = [low, high]
                changed = True
        return self._add_part_bounds(schema) or changed

    def _add_part_bounds(self, schema: dict[str, Any]) -> bool:
        """The word bounds of a structured seed's parts (a MultiRC paragraph of 15 to 150 words): without
        them the model wrote "1" as a paragraph and a question that looped to the length limit."""
        parts = self.spec.seed.parts if self.spec is not None else None
        seeds = schema.get("properties", {}).get("seeds", {}).get("items", {})
        if not parts or "$ref" not in seeds:
            return False
        item = schema.get("$defs", {}).get(seeds["$ref"].rsplit("/", 1)[-1], {}).get("properties", {})
        changed = False
        for name, part in parts.items():
            if part.word_bounds is not None and item.get(name, {}).get("type") == "string":
                item[name][WORDS] = list(part.word_bounds)
                changed = True
        return changed


def _placeholder(annotation: Any) -> str:
    """A shape hint that carries no words a small model could copy as content."""
    if get_origin(annotation) is list:
        return "[..., ...]"
    if get_origin(annotation) is Literal:
        return " or ".join(json.dumps(v) for v in get_args(annotation))
    return "..."
