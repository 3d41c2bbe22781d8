"""Step 3: label-constrained generation. The label is chosen first and given to the model, so the
label distribution of the dataset is exactly the one planned."""

from __future__ import annotations

import dspy

from targen_dspy.signatures import TaskSpec, instance_signature
from targen_dspy.signatures.spec import LabelValue, label_text


class InstanceGenerator(dspy.Module):
    def __init__(self, spec: TaskSpec):
        super().__init__()
        self.spec = spec
        self.postprocess = spec.postprocessor()
        self.write = dspy.Predict(instance_signature(spec))

    def forward(self, setting: str, seed: str, label: LabelValue, sampling_seed: int = 0) -> dspy.Prediction:
        """An instance (the task's fields, in spec order) whose intended label is `label`."""
        written = self.write(
            task_description=self.spec.description,
            setting=setting,
            seed=seed,
            target_label=label_text(label),
            target_label_meaning=self.spec.meaning(label),
            config={"seed": sampling_seed},
        )
        generated = {name: written[name] for name in self.spec.written_fields}
        if self.spec.seed.field is not None:
            generated[self.spec.seed.field] = seed
        if self.postprocess is not None:
            generated = self.postprocess(generated, label)
        return dspy.Prediction(**{name: generated[name] for name in self.spec.fields})
