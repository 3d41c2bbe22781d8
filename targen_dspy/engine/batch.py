"""Running a program's stages through a provider's batch API, in rounds: every pending item (a contexts or
seeds call, a slot) runs as it does online, its model calls answered from the batch results fetched so
far (`backends.replay`); the calls that have no answer yet go into one batch per round, which is awaited,
and the items run again. A slot's generation call and then its self-correction call fall into successive
rounds; an answer that does not parse makes the engine ask again with a new sampling seed, which is a new
request in the next round, bounded by the same attempts as online.

Every job is written to the run directory before it is polled (`batch_journal`), and every result before
it is used, so a killed run resumes its jobs and never submits a request that a live job holds."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypeVar

from tqdm import tqdm

from targen_dspy.backends.batch_api import BatchState, OpenAIBatches, TransientBatchError
from targen_dspy.backends.replay import Answers, Deferred, PendingRequest
from targen_dspy.engine.batch_journal import BatchJournal, Job
from targen_dspy.engine.calls import CallEngine, RunSettings
from targen_dspy.engine.limits import RetryPolicy
from targen_dspy.engine.meter import Meter, price
from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.errors import ModelError
from targen_dspy.program.plan import Slot
from targen_dspy.program.records import Failure, Record

logger = logging.getLogger(__name__)
T = TypeVar("T")
Made = Record | Failure
MAX_LINES = 50_000  # OpenAI's limit of requests per batch file
UNREACHABLE_POLLS = 20  # polls in a row that fail before the run stops (rerun to resume)


@dataclass
class BatchBackend:
    """A batch run's provider side: the API client, the answers its LMs replay from (`batch_lm`) and
    how often to poll a running job."""

    client: OpenAIBatches
    answers: Answers
    poll_seconds: float = 30.0

    def rounds(
        self, run_dir: RunDirectory, meter: Meter, settings: RunSettings, progress: bool
    ) -> BatchRounds:
        return BatchRounds(self, BatchJournal(run_dir), meter, settings, progress)


class BatchRounds:
    """Runs items in rounds between batch jobs (a context manager: the journal is open inside)."""

    def __init__(
        self,
        backend: BatchBackend,
        journal: BatchJournal,
        meter: Meter,
        settings: RunSettings,
        progress: bool,
    ):
        self.backend, self.journal, self.meter, self.progress = backend, journal, meter, progress
        # One call per attempt, as online, but no waiting: a transient error is the batch's to retry.
        self.settings = replace(settings, rpm=None, tpm=None, retry=RetryPolicy(max_retries=0))

    def __enter__(self) -> BatchRounds:
        self.journal.open(self.backend.answers)
        return self

    def __exit__(self, *exc: object) -> None:
        self.journal.close()

    def summary(self) -> dict[str, Any]:
        """The run's batch figures over every invocation: jobs, requests submitted, answers fetched, and
        their tokens and cost at batch prices (what the provider bills)."""
        journal = self.journal
        tokens = journal.usage.tokens
        return {
            "jobs": len([job for job in journal.jobs.values() if job.batch is not None]),
            "requests": sum(len(job.custom_ids) for job in journal.jobs.values() if job.batch is not None),
            "answers": journal.usage.answers,
            "prompt_tokens": sum(used["prompt"] for used in tokens.values()),
            "completion_tokens": sum(used["completion"] for used in tokens.values()),
            "cost_usd": price(tokens, batch=True),
        }

    def scheduler(self) -> BatchScheduler:
        return BatchScheduler(self)

    def make(self, make_slot: Callable[..., Made], slots: Iterable[Slot]) -> Iterator[Made]:
        """`make_slot(slot, engine=...)` for every slot (the runner's `_make`), yielded as each finishes."""
        jobs = {slot.id: partial(make_slot, slot) for slot in slots}
        for _, made in self.settle("instances", jobs):
            yield made

    def settle(self, stage: str, jobs: dict[str, Callable[..., T]]) -> Iterator[tuple[str, T]]:
        """`job(engine=...)` for every job, round after round until none is deferred, yielding each result
        as it comes. A job's parse retries are counted when it finishes, not in each round it replays."""
        pending = dict(jobs)
        while pending:
            requests: dict[str, PendingRequest] = {}
            waiting: dict[str, list[str]] = {}  # custom_id -> the jobs waiting for it
            for key, job in list(pending.items()):
                engine = CallEngine(self.settings)
                try:
                    result = job(engine=engine)
                except Deferred as deferred:
                    requests.setdefault(deferred.request.custom_id, deferred.request)
                    waiting.setdefault(deferred.request.custom_id, []).append(key)
                    continue
                self.meter.parse_retries.update(engine.meter.parse_retries)
                del pending[key]
                yield key, result
            if pending:
                self._await(stage, requests, waiting)

    def _await(self, stage: str, requests: dict[str, PendingRequest], waiting: dict[str, list[str]]) -> None:
        """Submit the requests no live job holds, then wait for every job holding one of them."""
        in_flight = self.journal.in_flight()
        new = [request for custom_id, request in requests.items() if custom_id not in in_flight]
        for start in range(0, len(new), MAX_LINES):
            self._submit(stage, new[start : start + MAX_LINES], waiting)
        wanted = set(requests)
        self._wait([job for job in self.journal.live() if wanted.intersection(job.custom_ids)])

    def _submit(self, stage: str, requests: Sequence[PendingRequest], waiting: dict[str, list[str]]) -> None:
        client = self.backend.client
        ids = [request.custom_id for request in requests]
        # The slots waiting (a contexts or seeds call is no slot: its stage says what it is).
        slots = sorted({key for i in ids for key in waiting[i]}) if stage == "instances" else []
        file = client.upload([request.line() for request in requests])
        job = self.journal.uploaded(file, stage, ids, slots)  # durable before the batch exists
        self.journal.submitted(job, client.create(file, {"targen_stage": stage}))
        logger.info("submitted batch %s: %s, %d requests", job.batch, stage, len(ids))

    def _wait(self, jobs: list[Job]) -> None:
        """Poll `jobs` until each is done and fetched."""
        unreachable = 0
        if not jobs:
            return
        requests = sum(len(job.custom_ids) for job in jobs)
        done = sum(_finished(job.counts) for job in jobs)  # as last seen, by an earlier invocation too
        bar = tqdm(total=requests, initial=done, desc=f"batch {jobs[0].stage}", unit="req",
                   disable=not self.progress, leave=False)  # fmt: skip
        with bar:
            while jobs:
                try:
                    jobs = [job for job in jobs if not self._poll(job, bar)]
                    unreachable = 0
                except TransientBatchError as exc:
                    unreachable += 1
                    if unreachable >= UNREACHABLE_POLLS:
                        message = f"{exc}; the jobs are kept in the run directory: rerun to resume"
                        raise ModelError(message) from None
                    logger.info("poll failed (%s); trying again", exc)
                if jobs:
                    time.sleep(self.backend.poll_seconds)

    def _poll(self, job: Job, bar: tqdm) -> bool:
        """One look at `job`; fetches its results once done. Whether it is fetched."""
        client = self.backend.client
        if job.batch is None:  # uploaded, then the process died: was the batch created?
            state = client.created_from(job.file)
            if state is None:
                self.journal.abandoned(job)
                return True
            self.journal.submitted(job, state)
        before = _finished(job.counts)
        state = client.retrieve(job.batch)
        self.journal.state(job, state)
        bar.update(_finished(job.counts) - before)  # a 24-hour job shows its progress as it goes
        if not state.done:
            return False
        self._fetch(job, state)
        bar.update(len(job.custom_ids) - _finished(job.counts))
        return True

    def _fetch(self, job: Job, state: BatchState) -> None:
        """Store a finished job's results; a request it did not answer (expired, failed) counts as a
        failed submission and is submitted again next round, up to `MAX_SUBMISSIONS`."""
        answers = self.backend.answers

        def rows() -> Iterator[dict[str, Any]]:
            answered = set()
            for row in _results(self.backend.client.results(state), state):
                answered.add(row["custom_id"])
                yield row
            for custom_id in job.custom_ids:
                if custom_id not in answered:
                    yield _error_row(custom_id, f"batch {state.status}")

        for row in self.journal.fetched(job, rows()):
            answers.add(row["custom_id"], row["status"], row["body"])
            if row["status"] == 200:
                model, prompt, completion = self.journal.usage.add(row["body"])
                self.meter.add_batch_result(model, prompt, completion)


class BatchScheduler:
    """The program's `Scheduler` for a batch run: a stage's calls for all items go into batches, and
    the results come back in the items' order once all are in."""

    def __init__(self, rounds: BatchRounds):
        self.rounds = rounds

    def map(self, step: str, stage: Callable[[Any, int], T], items: Sequence[Any]) -> Iterator[T]:
        def call(item: Any, engine: CallEngine) -> T:
            return engine.parsed(step, partial(stage, item), item.sampling_seed, 1)

        jobs = {str(i): partial(call, item) for i, item in enumerate(items)}
        results = dict(self.rounds.settle(step, jobs))
        yield from (results[str(i)] for i in range(len(items)))


def _finished(counts: dict[str, int]) -> int:
    return counts.get("completed", 0) + counts.get("failed", 0)


def _results(lines: Iterable[dict[str, Any]], state: BatchState) -> Iterator[dict[str, Any]]:
    """Output and error file lines as result rows: custom_id, HTTP status, body."""
    for line in lines:
        response = line.get("response") or {}
        status = response.get("status_code")
        if isinstance(status, int) and isinstance(response.get("body"), dict):
            yield {"custom_id": line["custom_id"], "status": status, "body": response["body"]}
        else:
            error = line.get("error") or {}
            message = f"{error.get('code', state.status)}: {error.get('message', '')}"
            yield _error_row(line["custom_id"], message)


def _error_row(custom_id: str, message: str) -> dict[str, Any]:
    """A request the batch did not answer, as a server error (retryable: the slot fails, not the run)."""
    body = {"error": {"message": message, "type": "server_error"}}
    return {"custom_id": custom_id, "status": 500, "body": body}
