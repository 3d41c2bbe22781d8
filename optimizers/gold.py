"""The small gold set a user brings: loading it in the task's own field names, and splitting it so
that the examples that report the final figure are never seen by the optimizer."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy

from targen_dspy.errors import SpecError
from targen_dspy.inputs import MB, excerpt, one_line, read_text
from targen_dspy.signatures import TaskSpec

MAX_VALSET_BYTES = 50 * MB  # a gold set is tens of examples; this is far above any real one


def load_gold(spec: TaskSpec, path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file with the task's fields and label (extra columns such as `idx` are ignored),
    each checked against the spec's types before any model is built."""
    try:
        lines = read_text(path, "--valset", SpecError, max_bytes=MAX_VALSET_BYTES).split("\n")
    except OSError as exc:
        raise SpecError(f"cannot read --valset {path}: {exc.strerror}") from None
    names = [*spec.fields, spec.label_field]
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            row = None
        if not isinstance(row, dict):
            raise SpecError(f"{path}:{number} is not a JSON object; --valset takes JSONL, one object a line")
        missing = [name for name in names if name not in row]
        if missing:
            raise SpecError(f"{path}:{number} lacks {missing}; use the task's field names ({names})")
        label = row[spec.label_field]
        if not any(label == value and type(label) is type(value) for value in spec.label_values):
            raise SpecError(f"{path}:{number} has label {excerpt(label)}, not one of {spec.label_values}")
        try:  # every field with its type, strictly (no 1 for "1")
            spec.validate_example(row)
        except SpecError as exc:
            raise SpecError(
                one_line(f"{path}:{number}: {exc}; fix the row to fit the {spec.name} spec")
            ) from None
        rows.append({name: row[name] for name in names})
    if len(rows) < 4:
        raise SpecError(
            f"--valset {path} has {len(rows)} usable examples; give at least 4 (10-50 is typical)"
        )
    return rows


@dataclass(frozen=True)
class GoldSplit:
    train: list[dict[str, Any]]  # the optimizer's: demonstrations and its own scoring
    held_out: list[dict[str, Any]]  # only for the final hand-written vs compiled figure


def split_gold(rows: list[dict[str, Any]], held_out: float, seed: int = 0) -> GoldSplit:
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    k = min(len(rows) - 2, max(2, round(len(rows) * held_out)))
    return GoldSplit(train=shuffled[k:], held_out=shuffled[:k])


def correction_examples(spec: TaskSpec, rows: list[dict[str, Any]], seed: int = 0) -> list[dspy.Example]:
    """Each gold row twice: proposed with its true label, and with a deliberately wrong one. The
    corrector must answer the true label in both cases."""
    rng = random.Random(seed)
    examples = []
    for row in rows:
        true = row[spec.label_field]
        wrong = rng.choice([v for v in spec.label_values if v != true])
        fields = {name: row[name] for name in spec.checked_fields}
        for proposed in (true, wrong):
            example = dspy.Example(**fields, proposed_label=proposed, corrected_label=true)
            examples.append(example.with_inputs(*spec.checked_fields, "proposed_label"))
    return examples


def gold_texts(spec: TaskSpec, rows: list[dict[str, Any]]) -> set[str]:
    """Normalised field texts of the gold set, to catch generated instances that copy one."""
    from targen_dspy.program.distinct import normalise

    return {normalise(str(row[name])) for row in rows for name in spec.fields}
