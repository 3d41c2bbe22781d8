"""The engine's calls: a run's settings, and `CallEngine`, through which every model call of a run goes
(rate limits, retries on transient errors and on answers that do not parse, the meter)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from targen_dspy.engine.limits import (
    PARSE_ATTEMPTS,
    RateLimiter,
    RetryPolicy,
    call_with_retries,
    until_parsed,
)
from targen_dspy.engine.meter import Meter
from targen_dspy.errors import RunError

T = TypeVar("T")


@dataclass(frozen=True)
class RunSettings:
    n: int
    seeds_per_context: int = 4
    workers: int = 1
    max_attempts: int = PARSE_ATTEMPTS  # per call, each with a sampling seed of its own
    rpm: float | None = None
    tpm: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    dedup: float | None = None  # group checking: cosine at which an instance duplicates a kept one
    batch: bool = False  # calls sent as provider batch jobs (engine.batch), priced at batch rates

    def __post_init__(self) -> None:
        if self.n < 1:
            raise RunError(f"-n must be at least 1, got {self.n}")
        if self.seeds_per_context < 1 or self.workers < 1 or self.max_attempts < 1:
            raise RunError("--seeds-per-context, --workers and attempts must be at least 1")
        if (self.rpm is not None and self.rpm <= 0) or (self.tpm is not None and self.tpm <= 0):
            raise RunError("--rpm and --tpm must be positive")
        if self.dedup is not None and not 0 < self.dedup <= 1:
            raise RunError(f"--dedup is a cosine in (0, 1], got {self.dedup}")


class CallEngine:
    """Shared by the workers of one invocation: limits, retries and the meter."""

    def __init__(self, settings: RunSettings):
        self.settings = settings
        self.meter = Meter(batch=settings.batch)
        self.limiter = RateLimiter(settings.rpm, settings.tpm)

    def call(self, fn: Callable[[], T], requests: int) -> T:
        """One unit of model work under the rate limits, with retries on transient errors."""
        estimate = self.meter.mean_tokens_per_call() * requests
        self.limiter.acquire(requests, estimate)
        with self.meter.unit() as usage:
            result = call_with_retries(fn, self.settings.retry, self.meter.count_retry)
        self.limiter.settle(estimate, usage.tokens)
        return result

    def parsed(self, step: str, make: Callable[..., T], sampling_seed: int, requests: int) -> T:
        """`make(sampling_seed=...)` as one unit of `call`, asked again while its answer does not parse
        (or, with `--correction filter`, while the corrector judges the instance otherwise)."""

        def attempt(sampling_seed: int) -> T:
            return self.call(partial(make, sampling_seed=sampling_seed), requests)

        attempts, count = self.settings.max_attempts, self.meter.count_parse_retry
        return until_parsed(step, attempt, sampling_seed, attempts, count)
