"""Step 1: diverse contexts (settings, domains) for the task, generated once per run."""

from __future__ import annotations

from collections.abc import Sequence

import dspy

from targen_dspy.program.distinct import collect_distinct
from targen_dspy.signatures import ProposeContexts, TaskSpec
from targen_dspy.signatures.steps import with_options


class ContextGenerator(dspy.Module):
    def __init__(self, spec: TaskSpec, max_rounds: int = 4, constraints: Sequence[str] = ()):
        super().__init__()
        self.spec = spec
        self.max_rounds = max_rounds
        self.constraints = tuple(constraints)
        self.propose = dspy.Predict(ProposeContexts)

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
            task_description=self.spec.description,
            context_kind=self.spec.context,
            **extra,
        )
        return dspy.Prediction(contexts=contexts)
