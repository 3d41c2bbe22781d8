"""An index of a run's instances by byte offset, so that a page of a 20,000-instance run is read from
disk without loading the run, and a run still being written is picked up as it grows.

The run directory is untrusted and may be in the middle of a write: only lines ending in a newline are
indexed (a torn last line waits for its end), and lines that are not JSON objects, or are too long to
show, are counted and skipped, never fatal. Nothing here writes to the run.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCES = {"data": "data.jsonl", "rejected": "rejected.jsonl", "duplicates": "duplicates.jsonl"}
MAX_LINE = 1_000_000  # bytes; a longer line is skipped as unreadable


@dataclass(frozen=True, slots=True)
class Entry:
    source: str  # a key of SOURCES
    offset: int  # where its line starts in the source file
    id: str
    label: str  # the final label as JSON (`"entailment"`, `0`), "" if the record has none
    constrained: str | None  # the constrained label as JSON; None in runs without one
    relabeled: bool


@dataclass(frozen=True)
class Filter:
    source: str = "data"
    label: str | None = None  # a label as JSON
    relabeled: bool | None = None
    text: str = ""  # case-insensitive, over the record's text values

    def keeps(self, entry: Entry) -> bool:
        return (
            entry.source == self.source
            and (self.label is None or entry.label == self.label)
            and (self.relabeled is None or entry.relabeled == self.relabeled)
        )


class RunIndex:
    """The instances of a run directory's data, rejected and duplicates files, by byte offset."""

    def __init__(self, run: Path, label_field: str):
        self.run = run
        self.label_field = label_field
        self.entries: dict[str, list[Entry]] = {source: [] for source in SOURCES}
        self.by_id: dict[str, Entry] = {}  # instances of data.jsonl
        self.unreadable: Counter[str] = Counter()  # lines skipped, by source
        self._indexed = dict.fromkeys(SOURCES, 0)  # bytes of each file indexed so far
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Index what was appended to the run's files since the last call."""
        with self._lock:
            for source, name in SOURCES.items():
                self._index_tail(source, self.run / name)

    def _index_tail(self, source: str, path: Path) -> None:
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed below; a missing file is an empty source
        except FileNotFoundError:
            return
        with file:
            file.seek(self._indexed[source])
            offset = self._indexed[source]
            while line := file.readline(MAX_LINE + 1):
                if not line.endswith(b"\n"):
                    if len(line) <= MAX_LINE:
                        break  # torn: indexed once its writer ends it
                    self.unreadable[source] += 1  # too long: skip to the end of the line
                    while (rest := file.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                        pass
                    offset = file.tell()
                    continue
                entry = self._entry(source, offset, line)
                offset += len(line)
                if entry is None:
                    self.unreadable[source] += int(bool(line.strip()))
                    continue
                self.entries[source].append(entry)
                if source == "data":
                    self.by_id.setdefault(entry.id, entry)
            self._indexed[source] = offset

    def _entry(self, source: str, offset: int, line: bytes) -> Entry | None:
        record = _parse(line)
        if record is None or not isinstance(record.get("id"), str):
            return None
        return Entry(
            source=source,
            offset=offset,
            id=record["id"],
            label=json.dumps(record[self.label_field]) if self.label_field in record else "",
            constrained=json.dumps(record["constrained_label"]) if "constrained_label" in record else None,
            relabeled=bool(record.get("relabeled")),
        )

    def record(self, entry: Entry) -> dict[str, Any]:
        """The record of `entry`, read from its file."""
        with open(self.run / SOURCES[entry.source], "rb") as file:
            file.seek(entry.offset)
            record = _parse(file.readline(MAX_LINE + 1))
        if record is None:  # the file was rewritten under us (a resumed run cuts no more than a torn line)
            raise LookupError(f"{entry.id} moved in {SOURCES[entry.source]}")
        return record

    def search(self, where: Filter, start: int, count: int) -> tuple[int, list[dict[str, Any]]]:
        """The number of instances that pass `where`, and the records of `count` of them from `start`."""
        entries = [entry for entry in self.entries[where.source] if where.keeps(entry)]
        if not where.text:
            return len(entries), [self.record(entry) for entry in entries[start : start + count]]
        needle = where.text.casefold()
        found = [record for record in self._records(where.source, entries) if needle in _text(record)]
        return len(found), found[start : start + count]

    def _records(self, source: str, entries: list[Entry]) -> Iterator[dict[str, Any]]:
        """The records of `entries` (in file order), read in one pass over the file."""
        wanted = {entry.offset for entry in entries}
        with open(self.run / SOURCES[source], "rb") as file:
            offset = 0
            for line in iter(lambda: file.readline(MAX_LINE + 1), b""):
                if offset in wanted and (record := _parse(line)) is not None:
                    yield record
                offset += len(line)

    def counts(self) -> dict[str, Any]:
        """Instances per source, final label counts and the self-correction confusion matrix
        (constrained -> final label, as in stats.json) of data.jsonl as indexed now."""
        data = self.entries["data"]
        confusion: dict[str, Counter[str]] = {}
        for entry in data:
            if entry.constrained is not None:
                confusion.setdefault(entry.constrained, Counter())[entry.label] += 1
        return {
            "instances": {source: len(entries) for source, entries in self.entries.items()},
            "unreadable": dict(self.unreadable),
            "labels": dict(Counter(entry.label for entry in data)),
            "relabeled": sum(entry.relabeled for entry in data),
            "confusion": {row: dict(cols) for row, cols in confusion.items()},
        }


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def _text(record: dict[str, Any]) -> str:
    """Every string in the record, lower-cased without case distinctions, for text search."""
    parts: list[str] = []
    stack: list[Any] = [record]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif value is not None:
            parts.append(str(value))
    return "\n".join(parts).casefold()
