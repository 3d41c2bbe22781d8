"""Which fields of a record are its text: what near-duplicates, similarity and diversity are measured on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from targen_dspy.program.records import SLOT_COLUMNS

if TYPE_CHECKING:
    from targen_dspy.signatures import TaskSpec

# Columns a Record adds to an instance, group checking's, and SuperGLUE's row index: never its text.
BOOKKEEPING = frozenset({*SLOT_COLUMNS, "duplicate_of", "idx"})


def text_fields(
    spec: TaskSpec | None, records: Iterable[Mapping[str, Any]] = (), label_field: str = "label"
) -> list[str]:
    """The free-text fields: a spec's `text` fields without fixed `choices` (not WiC's offsets, not
    COPA's cause/effect); without a spec, the fields of `records` that are strings in every one of them,
    but the label and the bookkeeping columns."""
    if spec is not None:
        return [
            name
            for name, field in spec.fields.items()
            if field.type == "text" and field.choices is None and name != spec.label_field
        ]
    records = list(records)
    keys = dict.fromkeys(key for record in records for key in record)
    return [
        key
        for key in keys
        if key not in BOOKKEEPING
        and key != label_field
        and all(isinstance(record.get(key), str) for record in records)
    ]


def record_text(record: Mapping[str, Any], fields: Sequence[str]) -> str:
    """The record's text fields as one text, one field a line."""
    return "\n".join(str(record[name]) for name in fields)
