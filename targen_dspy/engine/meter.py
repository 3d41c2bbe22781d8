"""What a run spent: LLM calls, cache hits, tokens and cost, counted without keeping per-call records
(so memory does not grow with the size of the run)."""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback


@dataclass
class UnitUsage:
    tokens: int = 0


class Meter(BaseCallback):
    """A DSPy callback counting LM calls, plus per-unit usage trackers folded into running totals.

    A call served from DSPy's cache is counted as a call but adds no usage; the difference is the
    number of cache hits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.retries = 0
        self.billed_calls = 0
        self.tokens: dict[str, dict[str, int]] = defaultdict(lambda: {"prompt": 0, "completion": 0})

    def on_lm_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
        if exception is None:
            with self._lock:
                self.calls += 1

    @contextlib.contextmanager
    def counting(self, program: dspy.Module) -> Iterator[None]:
        """Count the LM calls of `program` (its predictors' models and the context's) while inside.

        The meter is added to those LMs' own callbacks, not DSPy's global ones: with a global callback
        DSPy binds the arguments of every module and adapter call too, not only the LM's."""
        models = [dspy.settings.lm, *(predictor.lm for predictor in program.predictors())]
        lms = list({id(lm): lm for lm in models if lm is not None}.values())
        for lm in lms:
            lm.callbacks = [*lm.callbacks, self]  # a new list: the LM's may be shared
        try:
            yield
        finally:
            for lm in lms:
                lm.callbacks = [callback for callback in lm.callbacks if callback is not self]

    def count_retry(self) -> None:
        with self._lock:
            self.retries += 1

    @contextlib.contextmanager
    def unit(self) -> Iterator[UnitUsage]:
        """Measure one unit of work (a slot, a materials call) in the current thread."""
        usage = UnitUsage()
        try:
            with dspy.track_usage() as tracker:
                yield usage
        finally:
            with self._lock:
                for model, entries in tracker.usage_data.items():
                    self.billed_calls += len(entries)
                    for entry in entries:
                        prompt, completion = (
                            entry.get("prompt_tokens") or 0,
                            entry.get("completion_tokens") or 0,
                        )
                        self.tokens[model]["prompt"] += prompt
                        self.tokens[model]["completion"] += completion
                        usage.tokens += prompt + completion

    def mean_tokens_per_call(self) -> float:
        with self._lock:
            total = sum(t["prompt"] + t["completion"] for t in self.tokens.values())
            return total / self.billed_calls if self.billed_calls else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cache_hits": max(0, self.calls - self.billed_calls),
            "retries": self.retries,
            "prompt_tokens": sum(t["prompt"] for t in self.tokens.values()),
            "completion_tokens": sum(t["completion"] for t in self.tokens.values()),
            "cost_usd": _cost(self.tokens),
        }


def _cost(tokens: dict[str, dict[str, int]]) -> float | None:
    """Cost from litellm's price table, or None when a model's price is unknown (e.g. local models)."""
    import litellm

    litellm.suppress_debug_info = True  # an unknown model makes it print its provider list
    total = 0.0
    for model, used in tokens.items():
        try:
            prompt, completion = litellm.cost_per_token(
                model=model, prompt_tokens=used["prompt"], completion_tokens=used["completion"]
            )
        except Exception:
            return None
        total += prompt + completion
    return round(total, 6)
