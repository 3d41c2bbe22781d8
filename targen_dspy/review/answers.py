"""review.jsonl: the reviewer's answers, appended and fsynced one at a time as they are given, so that
a closed page or a killed server loses nothing; the last answer for an instance counts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from targen_dspy.engine.rundir import JsonlAppender
from targen_dspy.review.index import MAX_LINE, Entry

REVIEW = "review.jsonl"


def read_answers(run: Path) -> dict[str, dict[str, Any]]:
    """The answers in `run`/review.jsonl by instance id, the last per id. Lines that are torn or not
    answers (the file is the user's to edit) are skipped."""
    answers: dict[str, dict[str, Any]] = {}
    try:
        file = open(run / REVIEW, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return answers
    with file:
        for line in iter(lambda: file.readline(MAX_LINE + 1), b""):
            try:
                answer = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(answer, dict) and isinstance(answer.get("id"), str) and "final_label" in answer:
                answers[answer["id"]] = answer
    return answers


def answer_record(entry: Entry, label: Any, not_instance: bool) -> dict[str, Any]:
    """The review.jsonl line for an answer about `entry`: the reviewer's label (None when flagged as not
    an instance) beside the run's labels, so that the agreement needs review.jsonl alone."""
    record = {
        "id": entry.id,
        "label": None if not_instance else label,
        "not_instance": not_instance,
        "final_label": json.loads(entry.label),
        "relabeled": entry.relabeled,
        "at": round(time.time(), 3),
    }
    if entry.constrained is not None:
        record["constrained_label"] = json.loads(entry.constrained)
    return record


class ReviewLog:
    """The run's review.jsonl, read once and appended to."""

    def __init__(self, run: Path):
        self.answers = read_answers(run)
        self._appender = JsonlAppender(run / REVIEW)

    def add(self, record: dict[str, Any]) -> None:
        self._appender.append(record)  # durable before it counts
        self.answers[record["id"]] = record

    def close(self) -> None:
        self._appender.close()
