"""Reading a dataset to analyse (a run's data.jsonl or a real SuperGLUE split) and checking its fields."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from targen_dspy.errors import RunError, SpecError
from targen_dspy.inputs import MB, read_text

Record = dict[str, Any]
MAX_DATASET_BYTES = 2_000 * MB  # read whole into memory, as are its embeddings


def read_jsonl(path: Path) -> list[Record]:
    """The JSON objects of a JSONL file, one per non-empty line."""
    try:
        # Lines end at "\n" only: JSON strings may hold U+2028, which str.splitlines() breaks at.
        lines = read_text(path, "dataset", RunError, max_bytes=MAX_DATASET_BYTES).split("\n")
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror}") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            record = None
        if not isinstance(record, dict):
            raise RunError(
                f"{path}:{number} is not a JSON object; give a JSONL file such as a run's data.jsonl"
            )
        records.append(record)
    if not records:
        raise RunError(f"{path} has no records")
    return records


def check_fields(records: Sequence[Record], fields: Sequence[str], source: Path | str) -> None:
    """Raise SpecError naming the first record of `source` that lacks one of `fields`."""
    if not records:
        raise SpecError(f"{source} has no records")
    for number, record in enumerate(records, 1):
        missing = [name for name in fields if name not in record]
        if missing:
            raise SpecError(f"{source} record {number} lacks {missing}; use the task's field names")


def label_key(value: Any) -> str:
    """Labels are compared by their JSON form, as in stats.json: `true`, `0`, `"entailment"`."""
    return json.dumps(value)


def label_name(key: str) -> str:
    """A label key as a person reads it: entailment, true, 0."""
    value = json.loads(key)
    return value if isinstance(value, str) else key
