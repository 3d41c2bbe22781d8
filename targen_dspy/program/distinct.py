"""Asking a model for a list of distinct items over a few rounds (shared by the context and seed steps)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dspy

from targen_dspy.text.shape import normalise

__all__ = ["collect_distinct", "normalise"]


def collect_distinct(
    predict: Callable[..., dspy.Prediction],
    output: str,
    count: int,
    max_rounds: int,
    known: Sequence[str] = (),
    sampling_seed: int = 0,
    usable: Callable[[str], bool] = bool,
    **inputs,
) -> list[str]:
    """Up to `count` new, distinct, `usable` items from `predict`'s list field `output`.

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
            if key and key not in seen and usable(str(item)):
                seen.add(key)
                kept.append(str(item).strip())
    return kept[:count]
