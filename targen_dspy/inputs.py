"""Reading the files a user hands over (specs, gold sets, program.json, examples, corpora, run files).

They are untrusted: a file may be binary, not UTF-8, huge, or parse into a structure that is deeply
nested or (through YAML aliases) exponentially large once expanded. These helpers turn each case into
the caller's one-line TargenError; OSErrors pass through (the CLI reports a path it cannot use).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from targen_dspy.errors import TargenError

MB = 1_000_000
# Parsed specs and records are small: these bound a YAML alias bomb or a deep nest, which the checks
# after parsing (pydantic, json.dumps, hashing) would otherwise expand or recurse into.
MAX_NODES = 200_000
MAX_DEPTH = 64


def read_text(path: Path, what: str, error: type[TargenError], max_bytes: int) -> str:
    """The UTF-8 text of `path`; a one-line `error` if it is over `max_bytes`, binary or not UTF-8."""
    with open(path, "rb") as file:
        data = file.read(max_bytes + 1)
    return decode(data, f"{what} {path}", error, max_bytes)


def decode(data: bytes, what: str, error: type[TargenError], max_bytes: int | None = None) -> str:
    if max_bytes is not None and len(data) > max_bytes:
        raise error(f"{what} is larger than {size(max_bytes)}; give a smaller file")
    if b"\0" in data:
        raise error(f"{what} is a binary file; give a UTF-8 text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def size(n_bytes: int) -> str:
    return f"{n_bytes / MB:g} MB" if n_bytes >= MB else f"{n_bytes:,} bytes"


def check_bounded(value: Any, what: str, error: type[TargenError]) -> None:
    """Raise `error` if `value`, with shared (aliased) parts counted every time they occur, has more
    than MAX_NODES nodes or is nested deeper than MAX_DEPTH. Stops counting at the limit, so a billion
    laughs costs MAX_NODES steps."""
    nodes, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise error(
                f"{what} is too large once its aliases are expanded; write it out without YAML aliases"
            )
        if depth > MAX_DEPTH:
            raise error(f"{what} is nested more than {MAX_DEPTH} levels deep; flatten it")
        if isinstance(item, Mapping):
            stack.extend((child, depth + 1) for pair in item.items() for child in pair)
        elif isinstance(item, (list, tuple, set)):
            stack.extend((child, depth + 1) for child in item)


def excerpt(value: Any, limit: int = 60) -> str:
    """`repr(value)` cut to about `limit` characters, for naming a bad value in a one-line message. A
    huge or aliased value is not rendered whole."""
    if isinstance(value, str):
        text = repr(value[: limit + 1])
    elif isinstance(value, (list, tuple, Mapping)):
        return f"a {type(value).__name__} of {len(value)} items"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(text: str, limit: int = 400) -> str:
    """`text` on one line (line breaks become spaces), cut to about `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
