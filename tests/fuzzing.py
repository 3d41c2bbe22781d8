"""Shared pieces of the fuzz tests of untrusted input: running the CLI in-process, the clean-error
property (exit code 2, one `targen: ` line on stderr, no traceback), junk values, and a snapshot of a
directory tree to show that nothing outside the run directory changed."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from targen_dspy.cli import main


def fuzz(max_examples: int) -> settings:
    """Fixed example counts, derandomized (the same inputs every run, in CI too), no example database
    (it would write .hypothesis/ into the working directory)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def cli(*argv: str) -> tuple[int, str]:
    """`targen ARGV` in this process: its exit code and stderr. An exception escaping `main` (the
    traceback a user would see) fails the test."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, err.getvalue()


def short_id(value: object) -> str | None:
    """A readable pytest id for a parameter that may be a huge string."""
    return repr(value)[:24] if isinstance(value, str | bytes) else None


def assert_clean_error(code: int, err: str) -> None:
    assert code == 2, f"exit {code}: {err}"
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("targen: "), repr(err)


def assert_clean(code: int, err: str) -> None:
    """A run that may succeed (its input turned out valid) or end with the clean error."""
    if code != 0:
        assert_clean_error(code, err)


def tree(root: Path, skip: Path | None = None) -> dict[str, bytes]:
    """Every file under `root` (but not under `skip`) with its content."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink() and (skip is None or not path.is_relative_to(skip))
    }


class Sandbox:
    """A working directory for one CLI run, beside a sentinel tree that must never change."""

    def __init__(self, root: Path):
        self.root = root
        self.work = root / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        sentinel = root / "sentinel"
        (sentinel / "nested").mkdir(parents=True, exist_ok=True)
        (sentinel / "keep.txt").write_text("do not touch\n")
        (sentinel / "nested" / "data.jsonl").write_text('{"id": "s"}\n')
        self.before = tree(root)

    def unchanged_outside(self, run_dir: Path | None = None) -> None:
        """Nothing outside `run_dir` changed: no file written, removed or altered (inputs included)."""
        assert tree(self.root, skip=run_dir) == {
            name: data
            for name, data in self.before.items()
            if run_dir is None or not (self.root / name).is_relative_to(run_dir)
        }


# JSON-like junk: scalars of every type, nested lists and objects, awkward text.
awkward_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "\n", "a\nb", "\u2028", "\x00", "TODO", "x" * 5000, "model_config", "id"]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), awkward_text)
junk = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(awkward_text, children, max_size=4),
    max_leaves=12,
)


def write_jsonl(path: Path, rows: list) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def yaml_text(value: object) -> str:
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False)


def environ_without_keys() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
