"""Reliability around model calls: retries with backoff and jitter, answers that do not parse asked
again, and request/token rate limits.

The engine owns these (DSPy's LM is built with num_retries=0), so every worker follows one policy:
a retry waits at least the provider's Retry-After, otherwise an exponentially growing delay with
full jitter so that workers rejected together do not come back together.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from dspy.utils.exceptions import AdapterParseError, is_retryable_lm_error

from targen_dspy.backends import LOCAL
from targen_dspy.engine.cache import forget_last_answer
from targen_dspy.errors import AskAgain

logger = logging.getLogger(__name__)
T = TypeVar("T")
PARSE_ATTEMPTS = 3  # per call (contexts, seeds, a slot): answers that do not parse are asked again
# The embedded model rewrites its input in some slots attempt after attempt; more attempts, each with a
# sampling seed of its own, fill more of them, and its calls cost only time.
LOCAL_ATTEMPTS = 6


def parse_attempts(model: str) -> int:
    """Attempts per call at an answer that parses (and is task-shaped) for `model`."""
    return LOCAL_ATTEMPTS if model == LOCAL else PARSE_ATTEMPTS


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, error: Exception, retry: int) -> float:
        hint = getattr(error, "retry_after", None)
        if isinstance(hint, int | float) and hint >= 0:
            return hint + random.uniform(0, 0.1 * hint + 0.05)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**retry))


def call_with_retries(
    fn: Callable[[], T], policy: RetryPolicy, on_retry: Callable[[], None] = lambda: None
) -> T:
    """`fn()`, retried on rate limits, server errors, timeouts and transport errors; others propagate."""
    for retry in range(policy.max_retries + 1):
        try:
            return fn()
        except Exception as exc:
            if not is_retryable_lm_error(exc) or retry == policy.max_retries:
                raise
            on_retry()
            delay = policy.delay(exc, retry)
            logger.info("retrying in %.2fs after %s", delay, type(exc).__name__)
            time.sleep(delay)
    raise AssertionError("unreachable")


class RawAnswer(Exception):
    """An answer that did not parse, as the driver of a Ray run sees it (`lm_response` as DSPy's error)."""

    def __init__(self, lm_response: str | None):
        super().__init__(lm_response)
        self.lm_response = lm_response


class Unparseable(Exception):
    """A step's answers did not parse in any attempt: a slot fails; contexts or seeds end the run."""

    def __init__(self, step: str, attempts: int, error: Exception):
        super().__init__(f"{step}: no answer parsed in {attempts} attempts")
        self.step, self.attempts, self.error = step, attempts, error

    def __reduce__(self) -> tuple:
        # From a Ray actor to the driver: DSPy's parse error does not pickle (its signature is a class made
        # at run time); its raw answer is kept.
        return Unparseable, (self.step, self.attempts, RawAnswer(getattr(self.error, "lm_response", None)))

    def describe(self, model: str) -> str:
        """One line: the step, the model, and its last raw answer (shortened)."""
        raw = " ".join(str(getattr(self.error, "lm_response", self.error) or "").split())
        raw = raw if len(raw) <= 120 else raw[:117] + "..."
        return (
            f"the {self.step} step got no answer that parses from {model} in {self.attempts} attempts "
            f"(last: {raw!r})"
        )


def attempt_seed(sampling_seed: int, attempt: int) -> int:
    """The sampling seed of an attempt: the call's own first (a resumed run replays it from the cache),
    then one derived from it that no other call's first attempt uses."""
    return sampling_seed if attempt == 0 else zlib.crc32(f"{sampling_seed}/{attempt}".encode())


def until_parsed(
    step: str,
    make: Callable[..., T],
    sampling_seed: int,
    attempts: int,
    on_retry: Callable[[str], None] = lambda step: None,
    redo: tuple[type[Exception], ...] = (AskAgain,),
) -> T:
    """`make(sampling_seed=...)` until its answer parses, at most `attempts` times, each attempt with a
    sampling seed of its own. An answer that did not parse is dropped from the run cache, so that neither
    this run nor a rerun replays it. `redo` are errors of answers that parsed but cannot be used (their
    `step` names them in `on_retry`): asked again the same way. Raises Unparseable after the last attempt.
    """
    for attempt in range(attempts):
        try:
            return make(sampling_seed=attempt_seed(sampling_seed, attempt))
        except (AdapterParseError, *redo) as exc:
            if isinstance(exc, AdapterParseError):
                forget_last_answer()  # the call was made in this thread: its entry is the thread's last
            error = exc
            if attempt + 1 < attempts:
                on_retry(getattr(exc, "step", step))
    raise Unparseable(step, attempts, error)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits shared by all workers.

    Each acquisition books the next free time on both budgets (a leaky bucket without burst), so the
    average rate over any minute stays under the limits. Token counts are estimates when a call
    starts and are settled with the actual count when it ends.
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None):
        self.rpm, self.tpm = rpm, tpm
        self._next_request = self._next_token = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, requests: int, tokens: float = 0.0) -> None:
        if not self.rpm and not self.tpm:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_request if self.rpm else now, self._next_token if self.tpm else now)
            if self.rpm:
                self._next_request = start + requests * 60.0 / self.rpm
            if self.tpm:
                self._next_token = start + tokens * 60.0 / self.tpm
        if start > now:
            time.sleep(start - now)

    def settle(self, estimated: float, actual: float) -> None:
        if self.tpm:
            with self._lock:
                self._next_token += (actual - estimated) * 60.0 / self.tpm
