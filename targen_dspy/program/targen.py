"""The TarGEN program: the four step modules composed. `forward` makes one instance for one planned
slot (setting, seed, label): that is the unit the engine runs in parallel and a teleprompter scores.

Optional steps (`GenerationOptions`) sit between generation and self-correction; a step that is off
has no module, so the program's predictors, its hash and compiled programs are those of plain TarGEN."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dspy

from targen_dspy.program.contexts import ContextGenerator
from targen_dspy.program.correction import SelfCorrector, corrected
from targen_dspy.program.grounding import GroundingJudge
from targen_dspy.program.instances import InstanceGenerator
from targen_dspy.program.options import GenerationOptions
from targen_dspy.program.rewrite import DifficultyEnhancer, SelfReflection
from targen_dspy.program.seeds import SeedGenerator
from targen_dspy.program.verification import CodeVerifier
from targen_dspy.signatures import TaskSpec
from targen_dspy.signatures.spec import LabelValue
from targen_dspy.verify.retrieval import Corpus


class TarGEN(dspy.Module):
    def __init__(self, spec: TaskSpec, options: GenerationOptions | None = None):
        super().__init__()
        self.spec = spec
        self.options = options = options or GenerationOptions()
        constraints = (*spec.constraints, *options.constraints)
        self.contexts = ContextGenerator(spec, constraints=constraints)
        self.seeds = SeedGenerator(spec, constraints=constraints)
        self.generate = InstanceGenerator(spec, constraints=constraints)
        self.correct = SelfCorrector(spec)
        if options.harder:
            self.harden = DifficultyEnhancer(spec, constraints)
        if options.reflect_rounds:
            self.reflect = SelfReflection(spec, options.reflect_rounds, constraints)
        if options.verify_code:
            self.verify = CodeVerifier(spec)
        if options.corpus is not None:
            self.ground = GroundingJudge(spec, Corpus.load(options.corpus))

    @property
    def calls_per_slot(self) -> int:
        """The most LLM calls one slot can make: generation, self-correction and the optional steps."""
        options = self.options
        verification = options.verify_code + (options.corpus is not None)
        correction = options.correction != "off"
        return 1 + correction + options.harder + 2 * options.reflect_rounds + verification

    def _version(self, fields: dict[str, Any], label: LabelValue) -> dict[str, Any]:
        """An instance as it was before a rewrite: its fields, and an open label, which changes with them."""
        return {**fields, self.spec.label_field: label} if self.spec.open_label else fields

    def forward(
        self,
        setting: str,
        seed: str,
        label: LabelValue,
        sampling_seed: int = 0,
        attributes: Mapping[str, str] | None = None,
    ) -> dspy.Prediction:
        """One instance for the slot. Besides the fields and labels, `extra` holds the record's other
        columns: the slot's `attributes`, the versions before each optional rewrite that changed it, and
        what verification found; `rejected` (only when set) says why verification dropped the instance.
        For an open label, `label` is None and the model writes it."""
        instance = self.generate(
            setting=setting, seed=seed, label=label, sampling_seed=sampling_seed, attributes=attributes
        )
        fields = {name: instance[name] for name in self.spec.fields}
        extra: dict[str, Any] = {"attributes": dict(attributes)} if attributes else {}
        if self.spec.open_label:  # no label was chosen first: the steps below check the one written
            label = instance[self.spec.label_field]
        step = {"seed": seed, "sampling_seed": sampling_seed, "attributes": attributes}
        if self.options.harder:  # an open label is written again for the harder instance
            harder = self.harden(fields=fields, label=label, **step)
            if harder.rewritten:
                extra["before_harder"] = self._version(fields, label)
                fields, label = harder.fields, harder.label
        if self.options.reflect_rounds:
            reflected = self.reflect(fields=fields, label=label, **step)
            if reflected.rewritten:
                extra["before_reflection"] = self._version(fields, label)
                fields, label = reflected.fields, reflected.label
                extra["critiques"] = reflected.critiques
        final, reasoning = corrected(self.options.correction, self.correct, label, sampling_seed, fields)
        relabeled, rejected = final != label, None
        if self.options.verify_code:  # after self-correction, so that code has the last word
            computed = self.verify(label=final, sampling_seed=sampling_seed, **fields)
            final, rejected = computed.label, computed.rejected
            extra.update(computed.extra)
        if self.options.corpus is not None and rejected is None:
            grounded = self.ground(sampling_seed=sampling_seed, **fields)
            extra["grounding"], rejected = grounded.grounding, grounded.rejected
        return dspy.Prediction(
            **fields,
            label=final,
            constrained_label=label,
            relabeled=relabeled,
            reasoning=reasoning,
            extra=extra,
            **({"rejected": rejected} if rejected else {}),
        )
