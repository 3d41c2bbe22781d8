"""A run's figures (`RunStats`): the label figures of its data, and what the engine counted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from targen_dspy.program.records import LabelStats


@dataclass
class RunStats:
    """What stats.json holds (labels keyed as written in the data: entailment, true, 0)."""

    data: LabelStats
    failed_slots: int
    retries: dict[str, int]  # answers asked again, by step, over every invocation of the run
    this_invocation: dict[str, Any]  # calls, cache hits, tokens, cost, time (Meter.summary and more)
    duplicates_removed: int | None = None  # with group checking (--dedup)
    rejected_by: dict[str, int] | None = None  # with verification: dropped instances by step
    label_imbalance: str | None = None  # a warning: self-correction made the labels one-sided
    batch: dict[str, Any] | None = None  # --batch: jobs, requests, and the metered tokens and cost of the run

    @property
    def instances(self) -> int:
        return self.data.instances

    @property
    def relabeled(self) -> int:
        return self.data.relabeled

    def to_json(self) -> dict[str, Any]:
        out = {**self.data.to_json(), "failed_slots": self.failed_slots, "retries": self.retries}
        if self.duplicates_removed is not None:
            out["duplicates_removed"] = self.duplicates_removed
        if self.rejected_by is not None:
            out |= {"rejected": sum(self.rejected_by.values()), "rejected_by": self.rejected_by}
        out["this_invocation"] = self.this_invocation
        if self.batch is not None:
            out["batch"] = self.batch
        if self.label_imbalance:
            out["label_imbalance"] = self.label_imbalance
        return out
