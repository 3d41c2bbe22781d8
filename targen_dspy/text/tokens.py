"""Counting tokens offline, as OpenAI bills them: tiktoken's `o200k_base` (the GPT-4o family) or
`cl100k_base`, read from the copies litellm ships (`litellm_core_utils/tokenizers`, named by the SHA-1 of
their URL, which is how tiktoken's cache finds them); without them, a quarter of the characters."""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

CACHE_VARIABLE = "TIKTOKEN_CACHE_DIR"
O200K_MODELS = ("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")
CHARS_PER_TOKEN = 4  # the fallback: English prose averages about four characters a token


@functools.cache
def _encoder(encoding: str) -> Callable[[str], int] | None:
    spec = importlib.util.find_spec("litellm")  # found, not imported: litellm's import costs seconds
    if spec is None or not spec.submodule_search_locations or importlib.util.find_spec("tiktoken") is None:
        return None
    bundled = Path(spec.submodule_search_locations[0]) / "litellm_core_utils" / "tokenizers"
    import tiktoken

    previous = os.environ.get(CACHE_VARIABLE)
    os.environ[CACHE_VARIABLE] = previous or str(bundled)
    try:
        encoder = tiktoken.get_encoding(encoding)
    except Exception:  # noqa: BLE001 - not bundled and no network: the fallback counts
        return None
    finally:
        if previous is None:
            os.environ.pop(CACHE_VARIABLE, None)
    return lambda text: len(encoder.encode(text, disallowed_special=()))


def count_tokens(text: str, model: str = "") -> int:
    """Tokens of `text` for `model` (`provider/name`; o200k for gpt-4o and later, else cl100k)."""
    name = model.rsplit("/", 1)[-1]
    encoding = "o200k_base" if name.startswith(O200K_MODELS) else "cl100k_base"
    encode = _encoder(encoding)
    return encode(text) if encode is not None else len(text) // CHARS_PER_TOKEN
