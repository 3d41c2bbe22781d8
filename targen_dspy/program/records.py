"""The program's typed outputs: a made instance (`Record`), a slot that could not be made (`Failure`), and
the label figures of a set of records (`LabelStats`). Their rows are the lines of a run's JSONL files."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from targen_dspy.signatures.spec import LabelValue, label_text

Row = dict[str, Any]
# Columns the program adds to an instance's fields and label, in the order they are written.
SLOT_COLUMNS = ("id", "constrained_label", "relabeled", "context", "seed", "reasoning")
# The optional steps that keep an instance's version from before they rewrote it, and the stats key
# that counts such instances.
REWRITES = {"before_harder": "made_harder", "before_reflection": "rewritten_by_reflection"}


@dataclass(frozen=True)
class Record:
    """One instance made for one slot: the task's fields, the final label and how it came about."""

    id: str
    fields: dict[str, Any]
    label: LabelValue
    constrained_label: LabelValue  # an open label's: the one the model wrote
    relabeled: bool
    context: str
    seed: str
    reasoning: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    rewrites: dict[str, Row] = field(default_factory=dict)  # REWRITES key -> the version before
    critiques: list[str] = field(default_factory=list)  # self-reflection's, when it rewrote
    verification: Row = field(default_factory=dict)  # code verification's columns
    grounding: Row | None = None  # the corpus judge's verdict
    rejected: Row | None = None  # why verification dropped the instance: {"by", "reason"}

    def row(self, label_field: str) -> Row:
        """The record as a line of data.jsonl (rejected.jsonl, with `rejected` second, when rejected)."""
        row: Row = {"id": self.id}
        if self.rejected:
            row["rejected"] = self.rejected
        row |= {
            **self.fields,
            label_field: self.label,
            "constrained_label": self.constrained_label,
            "relabeled": self.relabeled,
            "context": self.context,
            "seed": self.seed,
            "reasoning": self.reasoning,
        }
        if self.attributes:
            row["attributes"] = self.attributes
        row |= self.rewrites
        if self.critiques:
            row["critiques"] = self.critiques
        row |= self.verification
        if self.grounding is not None:
            row["grounding"] = self.grounding
        return row


@dataclass(frozen=True)
class Failure:
    """A slot given up on: answers that never parsed, a failing hook, transient errors."""

    id: str
    error: str
    raw: str | None = None  # the last unparseable answer

    def row(self) -> Row:
        return {"id": self.id, "failed": True, "error": self.error, **({"raw": self.raw} if self.raw else {})}


@dataclass
class LabelStats:
    """Label counts and the self-correction confusion matrix (constrained label -> final label) of a set
    of records, keyed by `key` (the label as written in the data, by default: entailment, true, 0)."""

    instances: int = 0
    relabeled: int = 0
    labels: Counter = field(default_factory=Counter)
    confusion: dict[str, Counter] = field(default_factory=dict)
    rewritten: Counter = field(default_factory=Counter)  # by REWRITES key
    code_checks: Counter = field(default_factory=Counter)  # verified_by_code, relabeled_by_code
    grounding: Counter = field(default_factory=Counter)  # by verdict

    @classmethod
    def of(cls, rows: Iterable[Row], label_field: str, key: Callable[[Any], str] = label_text) -> LabelStats:
        """The figures of data.jsonl rows, in one pass, so that they can be streamed from disk."""
        stats = cls()
        for row in rows:
            final = key(row[label_field])
            stats.confusion.setdefault(key(row["constrained_label"]), Counter())[final] += 1
            stats.labels[final] += 1
            stats.instances += 1
            stats.relabeled += row["relabeled"]
            stats.rewritten.update(name for name in REWRITES if name in row)
            if "verified_answer" in row:
                stats.code_checks.update(verified_by_code=1, relabeled_by_code=int(row["relabeled_by_code"]))
            if "grounding" in row:
                stats.grounding[row["grounding"]["verdict"]] += 1
        return stats

    def to_json(self) -> Row:
        return {
            "instances": self.instances,
            "relabeled": self.relabeled,
            **{REWRITES[name]: count for name, count in self.rewritten.items()},
            **self.code_checks,
            **({"grounding": dict(self.grounding)} if self.grounding else {}),
            "labels": dict(self.labels),
            "confusion": {row: dict(cols) for row, cols in self.confusion.items()},
        }
