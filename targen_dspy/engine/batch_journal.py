"""What a batch run has asked of the provider and got back, in its run directory, so that a killed run
resumes its jobs instead of submitting them again.

`batches.jsonl` is a log of events, each line fsynced before the next step: `uploaded` (an input file,
its stage, custom_ids and slots: written before the batch is created, so that a batch created just before
a crash is found again by its file), `submitted` (the batch id), `state` (a new status and its counts),
`fetched` (its results are all in `responses.jsonl`), `abandoned` (an upload no batch was made from).
`responses.jsonl` holds one line per result: custom_id, batch, HTTP status and body."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from targen_dspy.backends.batch_api import BatchState
from targen_dspy.backends.replay import Answers
from targen_dspy.engine.rundir import JsonlAppender, RunDirectory
from targen_dspy.errors import RunError


@dataclass
class Job:
    """One batch job: its input file, stage, requests and slots, and what is known of it."""

    file: str
    stage: str
    custom_ids: list[str]
    slots: list[str]
    batch: str | None = None
    status: str = "uploaded"
    counts: dict[str, int] = field(default_factory=dict)
    fetched: bool = False

    @property
    def live(self) -> bool:
        """Submitted (or possibly so) and not yet fetched: its requests must not be submitted again."""
        return not self.fetched and self.status != "abandoned"


@dataclass
class Usage:
    """Tokens of the answers fetched, by model (what the provider bills)."""

    tokens: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: {"prompt": 0, "completion": 0})
    )
    answers: int = 0

    def add(self, body: dict[str, Any]) -> tuple[str, int, int]:
        usage = body.get("usage") if isinstance(body, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        model = f"openai/{body.get('model', '')}"  # the batch API is OpenAI's: priced as `openai/NAME`
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        self.tokens[model]["prompt"] += prompt
        self.tokens[model]["completion"] += completion
        self.answers += 1
        return model, prompt, completion


class BatchJournal:
    """The run's batch jobs, read back from its files on `open` and appended to as they change."""

    def __init__(self, run_dir: RunDirectory):
        self.run_dir = run_dir
        self.jobs: dict[str, Job] = {}  # by input file id
        self.usage = Usage()  # over every invocation of the run
        # (batch, custom_id) of the results stored: a crash between a job's results and its `fetched`
        # line makes the rerun fetch them again, and each is to count once
        self._stored: set[tuple[str, str]] = set()
        self._events: JsonlAppender | None = None
        self._responses: JsonlAppender | None = None

    def open(self, answers: Answers) -> BatchJournal:
        """Read the jobs and the fetched results (into `answers`), then append from here."""
        self.read(answers)
        self._events = self.run_dir.appender(self.run_dir.batches)
        self._responses = self.run_dir.appender(self.run_dir.responses)
        return self

    def read(self, answers: Answers | None = None) -> BatchJournal:
        """The jobs, the tokens of the fetched results, and the results into `answers` if given."""
        for event in self.run_dir.iter_jsonl(self.run_dir.batches):
            self._apply(event)
        for row in self.run_dir.iter_jsonl(self.run_dir.responses):
            if (row["batch"], row["custom_id"]) not in self._stored:
                self._stored.add((row["batch"], row["custom_id"]))
                if answers is not None:
                    answers.add(row["custom_id"], row["status"], row["body"])
                if row["status"] == 200:
                    self.usage.add(row["body"])
        return self

    def close(self) -> None:
        for appender in (self._events, self._responses):
            if appender is not None:
                appender.close()

    def live(self) -> list[Job]:
        return [job for job in self.jobs.values() if job.live]

    def in_flight(self) -> set[str]:
        return {custom_id for job in self.live() for custom_id in job.custom_ids}

    def uploaded(self, file: str, stage: str, custom_ids: list[str], slots: list[str]) -> Job:
        return self._log({"event": "uploaded", "file": file, "stage": stage, "custom_ids": custom_ids,
                          "slots": slots})  # fmt: skip

    def submitted(self, job: Job, state: BatchState) -> None:
        self._log({"event": "submitted", "file": job.file, "batch": state.id})
        self.state(job, state)

    def abandoned(self, job: Job) -> None:
        self._log({"event": "abandoned", "file": job.file})

    def state(self, job: Job, state: BatchState) -> None:
        """Log `state` if it differs from the last logged."""
        if (state.status, state.counts) != (job.status, job.counts):
            self._log({"event": "state", "file": job.file, "status": state.status, "counts": state.counts})

    def fetched(self, job: Job, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Append the batch's result rows not stored yet (yielded once durable), then mark it fetched."""
        for row in rows:
            if (job.batch, row["custom_id"]) not in self._stored:
                self._stored.add((job.batch, row["custom_id"]))
                self._responses.append({**row, "batch": job.batch})
                yield row
        self._log({"event": "fetched", "file": job.file})

    def _log(self, event: dict[str, Any]) -> Job:
        self._events.append(event)
        return self._apply(event)

    def _apply(self, event: dict[str, Any]) -> Job:
        kind, file = event["event"], event["file"]
        if kind == "uploaded":
            self.jobs[file] = Job(file, event["stage"], list(event["custom_ids"]), list(event["slots"]))
            return self.jobs[file]
        job = self.jobs.get(file)
        if job is None:
            raise RunError(
                f"{self.run_dir.batches} names file {file} before its upload; restore the file or use a new "
                "-o directory"
            )
        if kind == "submitted":
            job.batch, job.status = event["batch"], "submitted"
        elif kind == "state":
            job.status, job.counts = event["status"], dict(event["counts"])
        elif kind == "fetched":
            job.fetched = True
        elif kind == "abandoned":
            job.status = "abandoned"
        return job
