"""The run directory, the unit of work: manifest, contexts and seeds, instances, failures, stats.

Instances are appended one JSON line at a time, flushed and fsynced, so a crash loses at most the line
being written; that torn line is dropped when the run is resumed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
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
    def __init__(self, path: Path | str):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path} is a file; -o names a run directory")

    manifest = property(lambda self: self.path / "manifest.json")
    materials = property(lambda self: self.path / "materials.json")
    data = property(lambda self: self.path / "data.jsonl")
    failed = property(lambda self: self.path / "failed.jsonl")
    duplicates = property(lambda self: self.path / "duplicates.jsonl")  # removed by group checking
    rejected = property(lambda self: self.path / "rejected.jsonl")  # dropped by a verification step
    stats = property(lambda self: self.path / "stats.json")

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
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise RunError(f"{path} is corrupt; delete it or use a new -o directory") from None

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
        self._drop_torn_line(path)
        with open(path, "rb") as file:  # binary: a line ends at b"\n" only, not at U+2028
            for line in file:
                if line.strip():
                    yield json.loads(line)

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
