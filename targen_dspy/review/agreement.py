"""How often a reviewer agrees with a run's labels, with a 95 % Wilson score interval.

The reviewer's label is compared with the final label (after self-correction) and with the
constrained label (the one the generator was asked for): if self-correction helps, the first agreement
is the higher. An answer that flags an instance as not an instance of the task disagrees with both.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Z_95 = 1.959964  # the standard normal quantile of 0.975


def wilson(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion `successes / n` (0..1 both ends; (0, 1) when n = 0).

    Unlike the normal approximation it stays inside [0, 1] and is sensible for small n and for rates
    near 0 or 1, which is what a reviewed sample of a few dozen instances gives."""
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in 0..{n}, got {successes}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    """`agree` of `n` answers, with its 95 % Wilson interval."""

    agree: int
    n: int

    @property
    def rate(self) -> float | None:
        return self.agree / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.agree, self.n)

    def describe(self) -> str:
        if not self.n:
            return "n/a (no answers)"
        low, high = self.interval
        return f"{self.rate:.1%} (95% CI {low:.1%}-{high:.1%}), {self.agree} of {self.n}"

    def as_json(self) -> dict[str, Any]:
        low, high = self.interval
        return {"agree": self.agree, "n": self.n, "rate": self.rate, "low": low, "high": high}


@dataclass(frozen=True)
class Agreement:
    final: Rate  # reviewer vs the label after self-correction: 1 - this is the estimated label noise
    constrained: Rate  # reviewer vs the label asked of the generator (runs with self-correction only)
    not_instance: int  # answers flagging an instance as not one of the task

    def as_json(self) -> dict[str, Any]:
        return {
            "final": self.final.as_json(),
            "constrained": self.constrained.as_json(),
            "not_instance": self.not_instance,
        }

    def describe(self) -> list[str]:
        return [
            f"reviewer vs final label: {self.final.describe()}",
            f"reviewer vs constrained label: {self.constrained.describe()}",
            f"flagged as not an instance of the task: {self.not_instance}",
        ]


def agreement(answers: Iterable[Mapping[str, Any]]) -> Agreement:
    """The agreement of review answers (review.jsonl lines: `label` or `not_instance`, with the
    instance's `final_label` and, when the run has one, `constrained_label`)."""
    final = constrained = final_n = constrained_n = flagged = 0
    for answer in answers:
        flagged += bool(answer.get("not_instance"))
        # Compared as JSON, as stats.json does: the label true is not the label 1.
        given = None if answer.get("not_instance") else json.dumps(answer.get("label"))
        final_n += 1
        final += given == json.dumps(answer["final_label"])
        if "constrained_label" in answer:
            constrained_n += 1
            constrained += given == json.dumps(answer["constrained_label"])
    return Agreement(Rate(final, final_n), Rate(constrained, constrained_n), flagged)
