"""Step 3: label-constrained generation. The label is chosen first and given to the model, so the
label distribution of the dataset is exactly the one planned."""

from __future__ import annotations

import json
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError

from targen_dspy.signatures import TaskSpec, instance_signature
from targen_dspy.signatures.spec import InconsistentInstance, LabelValue, label_text
from targen_dspy.signatures.steps import constrain


class InstanceGenerator(dspy.Module):
    def __init__(self, spec: TaskSpec):
        super().__init__()
        self.spec = spec
        self.postprocess = spec.postprocessor()
        self.write = dspy.Predict(instance_signature(spec))

    def forward(self, setting: str, seed: str, label: LabelValue, sampling_seed: int = 0) -> dspy.Prediction:
        """An instance (the task's fields, in spec order) whose intended label is `label`.

        A structured `seed` (JSON text, see SeedGenerator) comes in as its parts, which also narrow the
        constrained fields. Computed fields that cannot be made consistent with what the model wrote
        raise AdapterParseError, like unparseable output: the engine retries with a new sampling seed."""
        if self.spec.seed.parts is None:
            seed_values = {"seed": seed}
            from_seed = {} if self.spec.seed.field is None else {self.spec.seed.field: seed}
        else:
            seed_values = from_seed = self.spec.seed_parts(seed)
        signature = constrain(self.write.signature, self.spec, from_seed)
        written = self.write(
            signature=signature,
            task_description=self.spec.description,
            setting=setting,
            **seed_values,
            target_label=label_text(label),
            target_label_meaning=self.spec.meaning(label),
            config={"seed": sampling_seed},
        )
        generated: dict[str, Any] = {
            **from_seed,
            **{name: written[name] for name in self.spec.written_fields},
        }
        if self.postprocess is not None:
            try:
                generated = self.postprocess(generated, label)
            except InconsistentInstance as exc:
                raise AdapterParseError(
                    adapter_name=f"{self.spec.name} postprocess",
                    signature=signature,
                    lm_response=json.dumps(generated, ensure_ascii=False),
                    message=str(exc),
                ) from exc
        return dspy.Prediction(**{name: generated[name] for name in self.spec.fields})
