"""What a run spent: LLM calls, cache hits, tokens and cost, counted without keeping per-call records
(so memory does not grow with the size of the run)."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dspy
import dspy.clients.execution


@dataclass
class UnitUsage:
    tokens: int = 0


class Meter:
    """Counts a run's LM calls and their usage (as DSPy's usage tracker, folding each entry into running
    totals and into the tokens of the current thread's unit of work).

    A call served from DSPy's cache is counted as a call but DSPy reports no usage for it; the
    difference is the number of cache hits. One tracker for the whole run, not `dspy.track_usage()` per
    unit: that keeps every entry and enters a settings context per unit (0.1 ms of client CPU a call).

    Calls are counted where DSPy finishes every answered call, cache hits included (`finalize`, see
    `_counted_finalize`), not by a DSPy callback on the LMs: with one, DSPy binds the arguments of every
    LM call to its signature and makes a call id (about 0.1 ms of client CPU a call)."""

    def __init__(self, batch: bool = False) -> None:
        self.batch = batch  # priced at the provider's batch rates
        self._lock = threading.Lock()
        self._unit = threading.local()
        self._lms: set[int] = set()  # ids of the LMs whose calls are counted
        self.calls = 0
        self.retries = 0
        self.parse_retries: Counter[str] = Counter()  # by step: calls asked again after an unparseable answer
        self.billed_calls = 0
        self.tokens: dict[str, dict[str, int]] = defaultdict(lambda: {"prompt": 0, "completion": 0})

    def count_call(self, lm: Any) -> None:
        """One answered call of `lm` (from the server or the cache), if it is one of the counted LMs."""
        if id(lm) in self._lms:
            with self._lock:
                self.calls += 1

    def add_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        """DSPy's usage-tracker interface: called with the usage of each call not served from cache."""
        prompt = usage_entry.get("prompt_tokens") or 0
        completion = usage_entry.get("completion_tokens") or 0
        with self._lock:
            self.billed_calls += 1
            self.tokens[lm]["prompt"] += prompt
            self.tokens[lm]["completion"] += completion
        unit = getattr(self._unit, "usage", None)
        if unit is not None:
            unit.tokens += prompt + completion

    def add_batch_result(self, model: str, prompt: int, completion: int) -> None:
        """A call answered by a batch job (counted when its result is fetched)."""
        with self._lock:
            self.calls += 1
        self.add_usage(model, {"prompt_tokens": prompt, "completion_tokens": completion})

    @contextlib.contextmanager
    def counting(self, program: dspy.Module) -> Iterator[None]:
        """Count the LM calls of `program` (its predictors' models and the context's) while inside."""
        models = [dspy.settings.lm, *(predictor.lm for predictor in program.predictors())]
        outer, self._lms = self._lms, self._lms | {id(lm) for lm in models if lm is not None}
        try:
            with _finalize_counted(), dspy.context(usage_tracker=self):
                yield
        finally:
            self._lms = outer

    def count_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def count_parse_retry(self, step: str) -> None:
        with self._lock:
            self.parse_retries[step] += 1

    @contextlib.contextmanager
    def unit(self) -> Iterator[UnitUsage]:
        """Measure the tokens of one unit of work (a slot, a materials call) in the current thread."""
        outer, self._unit.usage = getattr(self._unit, "usage", None), UnitUsage()
        try:
            yield self._unit.usage
        finally:
            self._unit.usage = outer

    def mean_tokens_per_call(self) -> float:
        with self._lock:
            total = sum(t["prompt"] + t["completion"] for t in self.tokens.values())
            return total / self.billed_calls if self.billed_calls else 0.0

    def snapshot(self) -> dict[str, Any]:
        """The counts so far, as plain data (another process's meter is added to the run's with `add`)."""
        with self._lock:
            return {
                "calls": self.calls,
                "retries": self.retries,
                "billed_calls": self.billed_calls,
                "parse_retries": dict(self.parse_retries),
                "tokens": {lm: dict(used) for lm, used in self.tokens.items()},
            }

    def add(self, snapshot: dict[str, Any]) -> None:
        """Count another meter's `snapshot` as well."""
        with self._lock:
            self.calls += snapshot["calls"]
            self.retries += snapshot["retries"]
            self.billed_calls += snapshot["billed_calls"]
            self.parse_retries.update(snapshot["parse_retries"])
            for lm, used in snapshot["tokens"].items():
                self.tokens[lm]["prompt"] += used["prompt"]
                self.tokens[lm]["completion"] += used["completion"]

    def summary(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cache_hits": max(0, self.calls - self.billed_calls),
            "retries": self.retries,
            "prompt_tokens": sum(t["prompt"] for t in self.tokens.values()),
            "completion_tokens": sum(t["completion"] for t in self.tokens.values()),
            "cost_usd": price(self.tokens, self.batch),
        }


_finalize = dspy.clients.execution.finalize
_counting = 0  # meters counting now, in any thread: DSPy's function comes back after the last
_counting_lock = threading.Lock()


def _counted_finalize(lm: Any, call: Any, result: Any) -> Any:
    """DSPy's `finalize` (usage, history, the typed answer of an answered call), after counting the call
    for the meter that is the calling context's usage tracker."""
    meter = dspy.settings.usage_tracker
    if isinstance(meter, Meter):
        meter.count_call(lm)
    return _finalize(lm, call, result)


@contextlib.contextmanager
def _finalize_counted() -> Iterator[None]:
    """DSPy's LM calls finish through `_counted_finalize` while any meter is counting."""
    global _counting
    with _counting_lock:
        _counting += 1
        dspy.clients.execution.finalize = _counted_finalize
    try:
        yield
    finally:
        with _counting_lock:
            _counting -= 1
            if not _counting:
                dspy.clients.execution.finalize = _finalize


def price(tokens: dict[str, dict[str, int]], batch: bool = False) -> float | None:
    """Cost of `tokens` (model -> prompt and completion counts) from the price table DSPy ships (litellm's
    model cost map, read without importing litellm), or None when a model's price is unknown (the
    embedded model, a server of one's own). `batch`: the provider's batch prices (`*_batches`), where
    the table has none half the online price, as OpenAI and Anthropic charge."""
    total = 0.0
    for model, used in tokens.items():
        rates = token_rates(model, batch)
        if rates is None:
            return None
        total += used["prompt"] * rates[0] + used["completion"] * rates[1]
    return round(total, 6)


BATCH_DISCOUNT = 0.5


def token_rates(model: str, batch: bool = False) -> tuple[float, float] | None:
    """USD per input and per output token of `model` (`provider/name`), or None if unknown."""
    from dspy.clients.model_metadata import model_info, rate

    provider, _, name = model.partition("/")
    info = model_info(provider, name) if name else {}
    online = rate(info, "input_cost_per_token"), rate(info, "output_cost_per_token")
    if online[0] is None or online[1] is None:
        return None
    if not batch:
        return online[0], online[1]
    batched = rate(info, "input_cost_per_token_batches"), rate(info, "output_cost_per_token_batches")
    return (
        batched[0] if batched[0] is not None else online[0] * BATCH_DISCOUNT,
        batched[1] if batched[1] is not None else online[1] * BATCH_DISCOUNT,
    )
