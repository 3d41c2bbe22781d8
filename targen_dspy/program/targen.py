"""The TarGEN program: the four step modules composed. `forward` makes one instance for one planned
slot (setting, seed, label): that is the unit the engine runs in parallel and a teleprompter scores."""

from __future__ import annotations

import dspy

from targen_dspy.program.contexts import ContextGenerator
from targen_dspy.program.correction import SelfCorrector
from targen_dspy.program.instances import InstanceGenerator
from targen_dspy.program.seeds import SeedGenerator
from targen_dspy.signatures import TaskSpec
from targen_dspy.signatures.spec import LabelValue


class TarGEN(dspy.Module):
    def __init__(self, spec: TaskSpec):
        super().__init__()
        self.spec = spec
        self.contexts = ContextGenerator(spec)
        self.seeds = SeedGenerator(spec)
        self.generate = InstanceGenerator(spec)
        self.correct = SelfCorrector(spec)

    def forward(self, setting: str, seed: str, label: LabelValue, sampling_seed: int = 0) -> dspy.Prediction:
        instance = self.generate(setting=setting, seed=seed, label=label, sampling_seed=sampling_seed)
        fields = {name: instance[name] for name in self.spec.fields}
        verdict = self.correct(proposed_label=label, sampling_seed=sampling_seed, **fields)
        return dspy.Prediction(
            **fields,
            label=verdict.label,
            constrained_label=label,
            relabeled=verdict.label != label,
            reasoning=verdict.reasoning,
        )
