"""Step 1: diverse contexts (settings, domains) for the task, generated once per run.

A context that copies the spec's own text or is a bare label name is dropped, and the next round asks
for one in its place (`check_shape`, on; off only to measure what it does)."""

from __future__ import annotations

from collections.abc import Sequence

import dspy

from targen_dspy.program.distinct import collect_distinct
from targen_dspy.signatures import ProposeContexts, TaskSpec
from targen_dspy.signatures.steps import with_options
from targen_dspy.text.shape import ShapeCheck


class ContextGenerator(dspy.Module):
    def __init__(self, spec: TaskSpec, max_rounds: int = 4, constraints: Sequence[str] = ()):
        super().__init__()
        self.spec = spec
        self.max_rounds = max_rounds
        self.constraints = tuple(constraints)
        self.propose = dspy.Predict(ProposeContexts)
        self.check_shape = True
        self._shape = ShapeCheck(spec)

    def forward(self, count: int, known: Sequence[str] = (), sampling_seed: int = 0) -> dspy.Prediction:
        """`count` new distinct contexts, none of them in `known` (fewer if the model runs dry)."""
        signature, extra = with_options(self.propose.signature, self.constraints)
        if extra:
            extra["signature"] = signature
        contexts = collect_distinct(
            self.propose,
            "contexts",
            count,
            self.max_rounds,
            known,
            sampling_seed,
            usable=self._usable,
            task_description=self.spec.description,
            context_kind=self.spec.context,
            **extra,
        )
        return dspy.Prediction(contexts=contexts)

    def _usable(self, context: str) -> bool:
        return not (self.check_shape and self._shape.context(context, min_words=1))
