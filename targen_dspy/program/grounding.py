"""Retrieval-grounded validation (DataGen): the passages of the user's documents (`--corpus DIR`) that
BM25 finds for an instance, and a judge of the instance's facts against them. An instance the passages
contradict is dropped; the others keep the verdict in their record."""

from __future__ import annotations

from typing import Any

import dspy

from targen_dspy.signatures import TaskSpec
from targen_dspy.signatures.verification import judge_signature
from targen_dspy.verify.retrieval import Corpus

NOTHING_FOUND = "no passage of the corpus shares a word with the example"


class GroundingJudge(dspy.Module):
    def __init__(self, spec: TaskSpec, corpus: Corpus, k: int = 3):
        super().__init__()
        self.spec = spec
        self.corpus = corpus
        self.k = k
        self.judge = dspy.Predict(judge_signature(spec))

    def forward(self, sampling_seed: int = 0, **fields: Any) -> dspy.Prediction:
        """`grounding` (verdict, reason and the passages' ids, `file#n`) and `rejected` (None unless
        contradicted). With no passage to show, the verdict is not_found without a model call."""
        checked = {name: fields[name] for name in self.spec.checked_fields}
        found = self.corpus.search(" ".join(map(_text, checked.values())), self.k)
        if not found:
            grounding = {"verdict": "not_found", "reason": NOTHING_FOUND, "passages": []}
            return dspy.Prediction(grounding=grounding, rejected=None)
        judged = self.judge(
            task_description=self.spec.description,
            **checked,
            passages=[f"[{passage.id}] {passage.text}" for passage in found],
            config={"temperature": 0.0, "seed": sampling_seed},
        )
        grounding = {
            "verdict": judged.verdict,
            "reason": judged.reason,
            "passages": [passage.id for passage in found],
        }
        contradicted = judged.verdict == "contradicted"
        rejected = {"by": "corpus", "reason": judged.reason} if contradicted else None
        return dspy.Prediction(grounding=grounding, rejected=rejected)


def _text(value: Any) -> str:
    """A field's words: a text, or the texts of a list (of texts or spans)."""
    if isinstance(value, list):
        return " ".join(_text(item) for item in value)
    if isinstance(value, dict):
        return _text(value.get("text", ""))
    return str(value)
