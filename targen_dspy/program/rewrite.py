"""Optional steps after generation that rewrite an instance (DataGen, Huang et al. 2024): self-reflection
(a critique, then a rewrite when it finds a flaw) and difficulty enhancement.

A rewrite answers with the fields the instance step writes: the seed's fields are kept as they are and
computed fields are computed again by the spec's hook. A closed label is kept (it was chosen first); an
open label (a math answer) is written again after the rewritten fields. A rewrite that does not parse,
or whose fields cannot be made consistent, leaves the instance as it was: the step is an enhancement,
and the instance it was given is still a valid one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError

from targen_dspy.program.instances import finish, seed_inputs
from targen_dspy.signatures import TaskSpec
from targen_dspy.signatures.labels import label_policy
from targen_dspy.signatures.spec import LabelValue
from targen_dspy.signatures.steps import constrain, critique_signature, rewrite_signature, with_options

logger = logging.getLogger(__name__)
Fields = dict[str, Any]


class _Rewriter(dspy.Module):
    def __init__(self, spec: TaskSpec, constraints: Sequence[str] = ()):
        super().__init__()
        self.spec = spec
        self.constraints = tuple(constraints)
        self.labels = label_policy(spec)
        self.postprocess = spec.postprocessor()

    def _rewrite(
        self,
        predict: dspy.Predict,
        fields: Fields,
        seed: str,
        label: LabelValue,
        attributes: Mapping[str, str] | None,
        sampling_seed: int,
        **inputs: Any,
    ) -> tuple[Fields, LabelValue] | None:
        """The instance's fields and label as `predict` rewrites them, or None when its answer is
        unusable."""
        _, from_seed = seed_inputs(self.spec, seed)
        # options first: their signature is cached per tuned signature, a constrained one is per seed
        signature, extra = with_options(predict.signature, self.constraints, attributes)
        signature = constrain(signature, self.spec, from_seed)
        try:
            written = predict(
                signature=signature,
                task_description=self.spec.description,
                **self._label_inputs(fields, label),
                **inputs,
                **extra,
                config={"seed": sampling_seed},
            )
            label = self.labels.written(written, label)
            generated = {**from_seed, **{name: written[name] for name in self.spec.written_fields}}
            return finish(self.spec, self.postprocess, generated, label, signature), label
        except AdapterParseError as exc:
            logger.info("%s: rewrite kept out (%s)", self.spec.name, exc)
            return None

    def _label_inputs(self, fields: Fields, label: LabelValue) -> dict[str, Any]:
        """The example as the rewrite sees it, and what it is told of the label: the target label and its
        meaning, or for an open label its description, the label as written being part of the example."""
        example = {name: fields[name] for name in self.spec.checked_fields}
        return {**self.labels.target(label), "example": self.labels.version(example, label)}


class SelfReflection(_Rewriter):
    """Critique an instance against the task and its label; when the critique finds a flaw, rewrite it,
    and critique the new version again, at most `rounds` rewrites in all."""

    def __init__(self, spec: TaskSpec, rounds: int, constraints: Sequence[str] = ()):
        super().__init__(spec, constraints)
        if rounds < 1:
            raise ValueError(f"self-reflection needs at least one round, got {rounds}")
        self.rounds = rounds
        self.critique = dspy.Predict(critique_signature(spec))
        self.revise = dspy.Predict(rewrite_signature(spec, harder=False))

    def forward(
        self,
        fields: Fields,
        seed: str,
        label: LabelValue,
        sampling_seed: int = 0,
        attributes: Mapping[str, str] | None = None,
    ) -> dspy.Prediction:
        """`fields` (the task's fields) and `label` after reflection, and the critiques that led to each
        rewrite (none: the instance is unchanged). A critique is a judgment: greedy, like self-correction.
        `label` is the target label, or an open label as the model wrote it."""
        current, critiques = dict(fields), []
        for round_ in range(self.rounds):
            signature, extra = with_options(self.critique.signature, self.constraints, attributes)
            try:
                verdict = self.critique(
                    signature=signature,
                    task_description=self.spec.description,
                    **self.labels.judging(),
                    **self.labels.shown(label),
                    **{name: current[name] for name in self.spec.checked_fields},
                    **extra,
                    config={"temperature": 0.0, "seed": sampling_seed + round_},
                )
            except AdapterParseError as exc:
                logger.info("%s: critique did not parse (%s)", self.spec.name, exc)
                break
            if not verdict.flawed:
                break
            revised = self._rewrite(
                self.revise,
                current,
                seed,
                label,
                attributes,
                sampling_seed + round_,
                critique=verdict.critique,
            )
            if revised is None or revised == (current, label):
                break
            critiques.append(verdict.critique)
            current, label = revised
        return dspy.Prediction(fields=current, label=label, critiques=critiques, rewritten=bool(critiques))


class DifficultyEnhancer(_Rewriter):
    """Rewrite an instance to be harder to label while keeping its label."""

    def __init__(self, spec: TaskSpec, constraints: Sequence[str] = ()):
        super().__init__(spec, constraints)
        self.rewrite = dspy.Predict(rewrite_signature(spec, harder=True))

    def forward(
        self,
        fields: Fields,
        seed: str,
        label: LabelValue,
        sampling_seed: int = 0,
        attributes: Mapping[str, str] | None = None,
    ) -> dspy.Prediction:
        """The harder version of `fields` and its label (a closed label is kept, an open one written
        again), or both unchanged when the rewrite is unusable."""
        meanings = self.labels.meanings()
        harder = self._rewrite(self.rewrite, fields, seed, label, attributes, sampling_seed, **meanings)
        if harder is None or harder == (fields, label):
            return dspy.Prediction(fields=dict(fields), label=label, rewritten=False)
        return dspy.Prediction(fields=harder[0], label=harder[1], rewritten=True)
