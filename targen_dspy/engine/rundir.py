"""The run directory, the unit of work: manifest, contexts and seeds, instances, failures, stats.

Instances are appended one JSON line at a time, flushed and fsynced, so a crash loses at most the line
being written; that torn line is dropped when the run is resumed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from targen_dspy.errors import RunError


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JsonlAppender:
    """Append-only JSONL writer: one line per record, each durable when `append` returns."""

    def __init__(self, path: Path):
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def append(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
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
    stats = property(lambda self: self.path / "stats.json")

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

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
        if not self.data.exists():
            return []
        raw = self.data.read_bytes()
        end = raw.rfind(b"\n") + 1
        if end < len(raw):
            with open(self.data, "r+b") as file:
                file.truncate(end)
        return [json.loads(line) for line in raw[:end].decode("utf-8").splitlines() if line.strip()]

    def appender(self, failed: bool = False) -> JsonlAppender:
        return JsonlAppender(self.failed if failed else self.data)
