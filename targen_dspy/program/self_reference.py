"""The second program beside TarGEN: example-based generation with self-reference (Lee et al., 2023).

Its only inputs are the task description and one formatting example; `forward` writes a batch of new
examples shaped like it, conditioned on references chosen from what was generated before.

With `topics`, the run first asks for a few settings (TarGEN's context step) and gives each call one
of them. Not in the paper: a 135M model shown one example copies it, whatever the instruction says
(0 new examples in 3 rounds on the embedded model); a topic is the one input that changes per call."""

from __future__ import annotations

from typing import Any

import dspy

from targen_dspy.program.contexts import ContextGenerator
from targen_dspy.signatures import TaskSpec
from targen_dspy.signatures.self_reference import self_reference_signature


class SelfReferenceGenerator(dspy.Module):
    def __init__(self, spec: TaskSpec, example: dict[str, Any], topics: bool = False):
        super().__init__()
        self.spec = spec
        self.example = example
        self.write = dspy.Predict(self_reference_signature(spec, example, topics))
        self.topics = ContextGenerator(spec) if topics else None

    def forward(
        self,
        references: list[dict[str, Any]],
        count: int,
        sampling_seed: int = 0,
        topic: str | None = None,
    ) -> dspy.Prediction:
        """`count` new examples (dicts in the format example's shape; fewer if the model wrote fewer),
        about `topic` when the program was built with topics."""
        written = self.write(
            task_description=self.spec.description,
            format_example=self.example,
            references=[{k: r[k] for k in self.example} for r in references],
            count=count,
            **({} if topic is None else {"topic": topic}),
            config={"seed": sampling_seed},
        )
        return dspy.Prediction(examples=[example.model_dump() for example in written.examples])
