"""Step 2: instance seeds per context: the raw material instances are built around (not exemplars)."""

from __future__ import annotations

from collections.abc import Sequence

import dspy

from targen_dspy.program.distinct import collect_distinct
from targen_dspy.signatures import TaskSpec, WriteSeeds


class SeedGenerator(dspy.Module):
    def __init__(self, spec: TaskSpec, max_rounds: int = 3):
        super().__init__()
        self.spec = spec
        self.max_rounds = max_rounds
        self.write = dspy.Predict(WriteSeeds)

    def forward(
        self, setting: str, count: int, known: Sequence[str] = (), sampling_seed: int = 0
    ) -> dspy.Prediction:
        """`count` new distinct seeds set in `setting`, none in `known` (fewer if the model runs dry)."""
        seeds = collect_distinct(
            self.write,
            "seeds",
            count,
            self.max_rounds,
            known,
            sampling_seed,
            task_description=self.spec.description,
            seed_kind=self.spec.seed.description,
            setting=setting,
        )
        return dspy.Prediction(seeds=seeds)
