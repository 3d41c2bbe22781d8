"""Step 3: label-constrained generation. The label is chosen first and given to the model, so the
label distribution of the dataset is exactly the one planned.

An instance that is not task-shaped (a field outside its word bounds, a copy of the spec's own text or a
bare label name, two fields the same text; `text.shape`) raises AdapterParseError like an answer that
does not parse, so the engine asks again with a new sampling seed and drops the answer from the cache
(`check_shape`, on; off only to measure what it does)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError

from targen_dspy.errors import SpecError
from targen_dspy.signatures import TaskSpec, instance_signature
from targen_dspy.signatures.labels import label_policy
from targen_dspy.signatures.spec import (
    HookFailed,
    InconsistentInstance,
    LabelValue,
    Postprocess,
)
from targen_dspy.signatures.steps import constrain, with_options
from targen_dspy.text.shape import ShapeCheck


def seed_inputs(spec: TaskSpec, seed: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The instance step's seed inputs (`seed`, or a structured seed's parts) and the generated fields
    the seed fills (the plain seed's field, or the parts named like fields)."""
    if spec.seed.parts is None:
        return {"seed": seed}, ({} if spec.seed.field is None else {spec.seed.field: seed})
    parts = spec.seed_parts(seed)
    return parts, parts


def finish(
    spec: TaskSpec,
    postprocess: Postprocess | None,
    generated: dict[str, Any],
    label: LabelValue,
    signature: type[dspy.Signature],
) -> dict[str, Any]:
    """The task's fields, in spec order, from the generated ones (through the spec's postprocess hook).

    A hook that cannot make the computed fields consistent raises AdapterParseError, like unparseable
    output: the engine retries the slot with a new sampling seed. A hook that fails otherwise, or returns
    anything but the task's fields, raises HookFailed: the slot fails with the reason."""
    if postprocess is None:
        return {name: generated[name] for name in spec.fields}
    try:
        fields = postprocess(dict(generated), label)
    except InconsistentInstance as exc:
        raise AdapterParseError(
            adapter_name=f"{spec.name} postprocess",
            signature=signature,
            lm_response=json.dumps(generated, ensure_ascii=False),
            message=str(exc),
        ) from exc
    except Exception as exc:  # someone's code: its failure is this slot's, not the run's
        raise HookFailed(f"postprocess {spec.postprocess} raised {type(exc).__name__}: {exc}") from exc
    try:
        return spec.check_fields(fields)
    except SpecError as exc:
        raise HookFailed(f"postprocess {spec.postprocess} returned a bad instance: {exc}") from None


class InstanceGenerator(dspy.Module):
    def __init__(self, spec: TaskSpec, constraints: Sequence[str] = ()):
        super().__init__()
        self.spec = spec
        self.constraints = tuple(constraints)
        self.labels = label_policy(spec)
        self.postprocess = spec.postprocessor()
        self.write = dspy.Predict(instance_signature(spec))
        self.check_shape = True
        self._shape = ShapeCheck(spec)

    def forward(
        self,
        setting: str,
        seed: str,
        label: LabelValue,
        sampling_seed: int = 0,
        attributes: Mapping[str, str] | None = None,
    ) -> dspy.Prediction:
        """An instance (`fields`: the task's fields, in spec order) and its `label`: the intended one, or
        for an open label (`label` is None) the one the model wrote.

        A structured `seed` (JSON text, see SeedGenerator) comes in as its parts, which also narrow the
        constrained fields. Computed fields that cannot be made consistent with what the model wrote
        raise AdapterParseError, like unparseable output: the engine retries with a new sampling seed.
        The slot's `attributes` (values of the spec's attributes) and the run's constraints, when there
        are any, are inputs of their own."""
        seed_values, from_seed = seed_inputs(self.spec, seed)
        # options first: their signature is cached per tuned signature, a constrained one is per seed
        signature, extra = with_options(self.write.signature, self.constraints, attributes)
        signature = constrain(signature, self.spec, from_seed)
        written = self.write(
            signature=signature,
            task_description=self.spec.description,
            setting=setting,
            **seed_values,
            **self.labels.target(label),
            **extra,
            config={"seed": sampling_seed},
        )
        generated = {**from_seed, **{name: written[name] for name in self.spec.written_fields}}
        if self.check_shape and (problems := self._shape.instance(generated)):
            raise AdapterParseError(
                adapter_name="shape check",
                signature=signature,
                lm_response=json.dumps(generated, ensure_ascii=False),
                message="; ".join(problems),
            )
        label = self.labels.written(written, label)
        fields = finish(self.spec, self.postprocess, generated, label, signature)
        return dspy.Prediction(fields=fields, label=label)
