"""The second program beside TarGEN: example-based generation with self-reference (Lee et al., 2023).

Its only inputs are the task description and one formatting example; `forward` writes a batch of new
examples shaped like it, conditioned on references chosen from what was generated before."""

from __future__ import annotations

from typing import Any

import dspy

from targen_dspy.signatures import TaskSpec
from targen_dspy.signatures.self_reference import self_reference_signature


class SelfReferenceGenerator(dspy.Module):
    """`presence_penalty` (OpenAI's range, -2 to 2) asks the model not to reuse the words it is shown:
    the embedded model applies it to the words of the format example and references, which it would
    otherwise copy (see `LlamaCppEngine`)."""

    def __init__(self, spec: TaskSpec, example: dict[str, Any], presence_penalty: float = 2.0):
        super().__init__()
        self.spec = spec
        self.example = example
        self.presence_penalty = presence_penalty
        self.write = dspy.Predict(self_reference_signature(spec, example))

    def forward(
        self, references: list[dict[str, Any]], count: int, sampling_seed: int = 0
    ) -> dspy.Prediction:
        """`count` new examples (dicts in the format example's shape; fewer if the model wrote fewer)."""
        written = self.write(
            task_description=self.spec.description,
            format_example=self.example,
            references=[{k: r[k] for k in self.example} for r in references],
            count=count,
            config={"seed": sampling_seed, "presence_penalty": self.presence_penalty},
        )
        return dspy.Prediction(examples=[example.model_dump() for example in written.examples])
