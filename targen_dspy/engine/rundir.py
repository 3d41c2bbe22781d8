"""The run directory, the unit of work: manifest, contexts and seeds, instances, failures, stats.

Instances are appended one JSON line at a time, flushed and fsynced, so a crash loses at most the line
being written; that torn line is dropped when the run is resumed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from targen_dspy.errors import RunError


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Characters that JSON leaves raw but Python's str.splitlines() (and some editors) break lines at.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def jsonl_line(record: dict[str, Any]) -> str:
    """`record` as one JSON line that every line splitter reads as one line."""
    return json.dumps(record, ensure_ascii=False).translate(_LINE_BREAKS) + "\n"


# What is wrong with a record read back from a run's JSONL file, or None. A run directory is the user's
# to edit, so what the engine reads back is checked: a corrupt file is a one-line RunError, not a crash.
RecordCheck = Callable[[dict[str, Any]], "str | None"]
Types = type | tuple[type, ...]


def record_shape(
    required: Mapping[str, Types], when: Mapping[str, Mapping[str, Types]] | None = None
) -> RecordCheck:
    """A check that a record has every `required` key (a dotted key reaches into an object) with a value
    of its types (`object`: any JSON value), and for each key of `when` it has, that key's own keys."""

    def problem(record: dict[str, Any]) -> str | None:
        shapes = [required, *(shape for key, shape in (when or {}).items() if key in record)]
        for key, types in (item for shape in shapes for item in shape.items()):
            value: Any = record
            for part in key.split("."):
                if not isinstance(value, dict) or part not in value:
                    return f"has no {key!r}"
                value = value[part]
            if not isinstance(value, types):
                return f"has {key!r} of type {type(value).__name__}"
        return None

    return problem


def targen_records(label_field: str, fields: list[str]) -> RecordCheck:
    """The keys the TarGEN engine reads back from data.jsonl (plan, stats, group checking)."""
    keys = dict.fromkeys([*fields, label_field, "constrained_label"], object)
    when = {"verified_answer": {"relabeled_by_code": int}, "grounding": {"grounding.verdict": str}}
    return record_shape({"id": str, **keys, "relabeled": int}, when)


def self_reference_records(fields: list[str]) -> RecordCheck:
    """The keys the self-reference rounds read back from data.jsonl (references, de-duplication)."""
    return record_shape({"id": str, **dict.fromkeys(fields, object), "round": int, "references": list})


class JsonlAppender:
    """Append-only JSONL writer: one line per record, each durable when `append` returns. The file is
    opened at the first record, so a run with no duplicates or rejections has no such file."""

    def __init__(self, path: Path):
        self.path = path
        self._file: TextIO | None = None

    def append(self, record: dict[str, Any]) -> None:
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._file.write(jsonl_line(record))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RunDirectory:
    """`check` is what data.jsonl's records must hold besides being JSON objects (`targen_records`,
    `self_reference_records`; the CLI passes the one of its method). `read_only`: a reader of a run that
    may be running (`targen status`) skips a torn last line instead of cutting it off the file, which
    would cut a line the run is writing."""

    def __init__(self, path: Path | str, check: RecordCheck | None = None, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path} is a file; -o names a run directory")
        self._checks: dict[str, RecordCheck] = {
            "data.jsonl": check or record_shape({}),
            "duplicates.jsonl": record_shape({"id": str}),
            "rejected.jsonl": record_shape({"id": str, "rejected.by": str}),
            "batches.jsonl": record_shape({"event": str, "file": str}),
            "responses.jsonl": record_shape({"custom_id": str, "batch": str, "status": int, "body": object}),
        }

    manifest = property(lambda self: self.path / "manifest.json")
    materials = property(lambda self: self.path / "materials.json")
    data = property(lambda self: self.path / "data.jsonl")
    failed = property(lambda self: self.path / "failed.jsonl")
    duplicates = property(lambda self: self.path / "duplicates.jsonl")  # removed by group checking
    rejected = property(lambda self: self.path / "rejected.jsonl")  # dropped by a verification step
    stats = property(lambda self: self.path / "stats.json")
    batches = property(lambda self: self.path / "batches.jsonl")  # --batch: jobs submitted, their states
    responses = property(lambda self: self.path / "responses.jsonl")  # --batch: the answers fetched

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def claim(self, manifest: dict[str, Any], force: bool = False) -> None:
        """Create the directory and write `manifest`; refuse to resume a run that was made with another
        spec or program (their hashes differ) unless `force`."""
        self.create()
        previous = self.read_json(self.manifest)
        if previous and not force:
            for key, what in (("spec_hash", "task spec"), ("program_hash", "program")):
                if previous.get(key) != manifest[key]:
                    raise RunError(
                        f"{self.path} was made with another {what}; "
                        "use a new -o directory or --force to mix them"
                    )
        self.write_json(self.manifest, manifest)

    def read_json(self, path: Path) -> Any | None:
        """A JSON file of the run; manifest.json must be an object, materials.json a list of
        [context, [seeds]]."""
        if not path.exists():
            return None
        try:
            value = json.loads(path.read_bytes())
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise RunError(f"{path} is corrupt; delete it or use a new -o directory") from None
        if path.name == "manifest.json" and not isinstance(value, dict):
            raise RunError(f"{path} is not a JSON object; delete it or use a new -o directory")
        if path.name == "materials.json" and not _is_materials(value):
            raise RunError(
                f"{path} is not a list of [context, [seeds]] (texts); delete it or use a new -o directory"
            )
        return value

    def write_json(self, path: Path, value: Any) -> None:
        """Atomic replace: readers see the old file or the new one, never half of either."""
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "w", encoding="utf-8") as file:
            json.dump(value, file, indent=2, ensure_ascii=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.path)

    def records(self) -> list[dict[str, Any]]:
        """The instances written so far. A torn last line (a crash mid-write) is cut off the file."""
        return list(self.iter_records())

    def iter_records(self) -> Iterator[dict[str, Any]]:
        """`records()` one at a time, so that reading a run does not hold it all in memory."""
        return self.iter_jsonl(self.data)

    def iter_jsonl(self, path: Path) -> Iterator[dict[str, Any]]:
        """The records of one of the run's JSONL files, streamed; a torn last line is cut off first."""
        if not path.exists():
            return
        if not self.read_only:
            self._drop_torn_line(path)
        check = self._checks.get(path.name, record_shape({}))
        with open(path, "rb") as file:  # binary: a line ends at b"\n" only, not at U+2028
            for number, line in enumerate(file, 1):
                if not line.strip() or not line.endswith(b"\n"):  # blank, or torn (read only)
                    continue
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):  # not JSON, or not UTF-8
                    record = None
                problem = "is not a JSON object" if not isinstance(record, dict) else check(record)
                if problem:
                    raise RunError(
                        f"{path}:{number} {problem}; fix or delete that line, or use a new -o directory"
                    )
                yield record

    def _drop_torn_line(self, path: Path) -> None:
        """Cut the file after its last newline, reading it backwards in blocks, never whole."""
        with open(path, "r+b") as file:
            size = keep = file.seek(0, os.SEEK_END)
            while keep > 0:
                start = max(0, keep - 65536)
                file.seek(start)
                newline = file.read(keep - start).rfind(b"\n")
                if newline >= 0:
                    keep = start + newline + 1
                    break
                keep = start
            if keep < size:
                file.truncate(keep)

    def appender(self, path: Path | None = None) -> JsonlAppender:
        """An appender to one of the run's JSONL files (`data`, `failed`, `rejected`, `duplicates`)."""
        return JsonlAppender(path or self.data)


def _is_materials(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, list)
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], list)
        and all(isinstance(seed, str) for seed in item[1])
        for item in value
    )
