"""Asking a model for a list of distinct items over a few rounds (shared by the context and seed steps)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import dspy

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The form two items are compared in: case, spacing and end punctuation do not make them distinct."""
    return _SPACE.sub(" ", text).strip().strip(".,;:!?\"'").casefold()


def collect_distinct(
    predict: Callable[..., dspy.Prediction],
    output: str,
    count: int,
    max_rounds: int,
    known: Sequence[str] = (),
    sampling_seed: int = 0,
    **inputs,
) -> list[str]:
    """Up to `count` new, distinct, non-empty items from `predict`'s list field `output`.

    Each round asks only for what is missing and shows everything kept so far, plus `known`, as
    `avoid`; its sampling seed (`sampling_seed` + round) differs per round so a round that added
    nothing is not replayed from the cache.
    """
    kept: list[str] = []
    seen = {normalise(item) for item in known}
    for round_ in range(max_rounds):
        missing = count - len(kept)
        if missing <= 0:
            break
        prediction = predict(
            **inputs, avoid=[*known, *kept], count=missing, config={"seed": sampling_seed + round_}
        )
        for item in getattr(prediction, output) or []:
            key = normalise(str(item))
            if key and key not in seen:
                seen.add(key)
                kept.append(str(item).strip())
    return kept[:count]
