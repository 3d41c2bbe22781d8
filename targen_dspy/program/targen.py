"""The TarGEN program: the four step modules composed, and the algorithm as stages the engine schedules.

Stages take typed values and return typed values, one item at a time, so that a stage's calls for many
items can be run in parallel, sent as one batch or spread over machines by whoever runs the program:
`propose_contexts` (ContextsAsk -> contexts), `write_seeds` (SeedsAsk -> seeds), `plan` (materials ->
slots) and `make` (Slot -> Record, the unit `forward` computes). `materials` is the contexts-and-seeds
phase written once against a `Scheduler`, which runs its stage calls.

Optional steps (`GenerationOptions`) sit between generation and self-correction; a step that is off
has no module, so the program's predictors, its hash and compiled programs are those of plain TarGEN."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import dspy

from targen_dspy.errors import RunError
from targen_dspy.program.contexts import ContextGenerator
from targen_dspy.program.correction import SelfCorrector, corrected
from targen_dspy.program.distinct import normalise
from targen_dspy.program.grounding import GroundingJudge
from targen_dspy.program.instances import InstanceGenerator
from targen_dspy.program.options import GenerationOptions
from targen_dspy.program.plan import Material, Slot, plan_slots, seeds_needed
from targen_dspy.program.records import Record
from targen_dspy.program.rewrite import DifficultyEnhancer, SelfReflection
from targen_dspy.program.seeds import SeedGenerator
from targen_dspy.program.verification import CodeVerifier
from targen_dspy.signatures import TaskSpec
from targen_dspy.signatures.labels import label_policy
from targen_dspy.verify.retrieval import Corpus

Item = TypeVar("Item")
Result = TypeVar("Result")
CONTEXTS_PER_CALL = 8
IDLE_ROUNDS = 3  # rounds in a row that add no seed before the materials phase gives up


@dataclass(frozen=True)
class ContextsAsk:
    """One call of the contexts stage: `count` new settings, none of them in `known`."""

    count: int
    known: tuple[str, ...]
    sampling_seed: int


@dataclass(frozen=True)
class SeedsAsk:
    """One call of the seeds stage: `count` seeds set in `setting`."""

    setting: str
    count: int
    sampling_seed: int = 0


class Scheduler(Protocol):
    def map(self, step: str, stage: Callable[[Item, int], Result], items: Sequence[Item]) -> Iterator[Result]:
        """`stage(item, sampling_seed)` for every item, starting with the item's own `sampling_seed` and
        asked again with new ones while the answer does not parse; results in the items' order. Closing
        the iterator drops the calls that have not started."""
        ...


class TarGEN(dspy.Module):
    def __init__(self, spec: TaskSpec, options: GenerationOptions | None = None):
        super().__init__()
        self.spec = spec
        self.labels = label_policy(spec)
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

    def seeds_needed(self, n: int) -> int:
        return seeds_needed(self.spec, n)

    def check_shapes(self, on: bool) -> None:
        """Whether contexts, seeds and instances that are not task-shaped are dropped or asked for again
        (on by default; off to measure what the check does, or where answers are placeholders)."""
        for step in (self.contexts, self.seeds, self.generate):
            step.check_shape = on

    # Stages 1 and 2: contexts, then seeds per context.

    def propose_contexts(self, ask: ContextsAsk, sampling_seed: int) -> list[str]:
        return self.contexts(count=ask.count, known=list(ask.known), sampling_seed=sampling_seed).contexts

    def write_seeds(self, ask: SeedsAsk, sampling_seed: int) -> list[str]:
        return self.seeds(setting=ask.setting, count=ask.count, sampling_seed=sampling_seed).seeds

    def materials(
        self,
        n: int,
        stored: Sequence[Material],
        run: Scheduler,
        seeds_per_context: int,
        save: Callable[[list[Material]], None],
    ) -> Iterator[Material]:
        """The contexts and seeds `n` instances need: `stored` ones first, then new ones, yielded one
        context at a time as its seeds come in, so that instances can start before the last seeds.

        Each round asks for just enough new contexts (CONTEXTS_PER_CALL per call) and for each context's
        seeds, in context order, so the materials are the same however the calls are scheduled; a seed
        already used under another context is dropped. `save` gets everything so far once per round (a
        round cut short too). Gives up after IDLE_ROUNDS rounds that added nothing."""
        needed = seeds_needed(self.spec, n)
        materials = list(stored)
        seen = {normalise(seed) for material in materials for seed in material.seeds}
        yield from materials
        round_, idle = 0, 0
        while len(seen) < needed and idle < IDLE_ROUNDS:
            round_, added = round_ + 1, 0
            known = tuple(material.context for material in materials)
            contexts = self._new_contexts(
                run, round_, known, math.ceil((needed - len(seen)) / seeds_per_context)
            )
            written = run.map("seeds", self.write_seeds, [SeedsAsk(c, seeds_per_context) for c in contexts])
            try:
                for context, seeds in zip(contexts, written, strict=False):
                    new = []
                    for seed in seeds:
                        if normalise(seed) not in seen:
                            seen.add(normalise(seed))
                            new.append(seed)
                    if new:
                        material = Material(context, tuple(new))
                        materials.append(material)
                        added += len(new)
                        yield material
            finally:  # an error or a stop: drop the calls not started, keep what came in
                written.close()
                if added:
                    save(materials)
            idle = 0 if added else idle + 1
        if len(seen) < needed:
            raise RunError(
                f"the model wrote only {len(seen)} distinct seeds of the {needed} this run needs; "
                "use a smaller -n, more --seeds-per-context or a stronger --model"
            )

    def _new_contexts(self, run: Scheduler, round_: int, known: tuple[str, ...], count: int) -> list[str]:
        """`count` new contexts (fewer if the model runs dry), asked in calls of CONTEXTS_PER_CALL: one
        call for a few hundred would be as slow as a few hundred seed calls in a row."""
        asks = [
            ContextsAsk(min(CONTEXTS_PER_CALL, count - start), known, zlib.crc32(f"{round_}-{i}".encode()))
            for i, start in enumerate(range(0, count, CONTEXTS_PER_CALL))
        ]
        seen, contexts = {normalise(context) for context in known}, []
        proposed = run.map("contexts", self.propose_contexts, asks)
        try:
            for batch in proposed:
                for context in batch:
                    if normalise(context) not in seen:
                        seen.add(normalise(context))
                        contexts.append(context)
        finally:
            proposed.close()
        return contexts

    # Stage 3: slots, each seed one per label.

    def plan(self, n: int, materials: Iterable[Material]) -> Iterator[Slot]:
        return plan_slots(self.spec, n, materials)

    # Stage 4: an instance per slot.

    def make(self, slot: Slot, sampling_seed: int) -> Record:
        return self(slot=slot, sampling_seed=sampling_seed).record

    def forward(self, slot: Slot, sampling_seed: int | None = None) -> dspy.Prediction:
        """The `record` made for `slot`: generation for its label (for an open label the model writes it),
        the optional rewrites, self-correction and verification. `sampling_seed` defaults to the slot's."""
        sampling_seed = slot.sampling_seed if sampling_seed is None else sampling_seed
        attributes = slot.attribute_values or None
        instance = self.generate(
            setting=slot.context, seed=slot.seed, label=slot.label, sampling_seed=sampling_seed,
            attributes=attributes,
        )  # fmt: skip
        fields, label = instance.fields, instance.label
        rewrites: dict[str, dict[str, Any]] = {}
        critiques: list[str] = []
        step = {"seed": slot.seed, "sampling_seed": sampling_seed, "attributes": attributes}
        if self.options.harder:  # an open label is written again for the harder instance
            harder = self.harden(fields=fields, label=label, **step)
            if harder.rewritten:
                rewrites["before_harder"] = self.labels.version(fields, label)
                fields, label = harder.fields, harder.label
        if self.options.reflect_rounds:
            reflected = self.reflect(fields=fields, label=label, **step)
            if reflected.rewritten:
                rewrites["before_reflection"] = self.labels.version(fields, label)
                fields, label, critiques = reflected.fields, reflected.label, reflected.critiques
        final, reasoning = corrected(self.options.correction, self.correct, label, sampling_seed, fields)
        relabeled, rejected = final != label, None
        verification: dict[str, Any] = {}
        grounding = None
        if self.options.verify_code:  # after self-correction, so that code has the last word
            computed = self.verify(label=final, sampling_seed=sampling_seed, **fields)
            final, rejected, verification = computed.label, computed.rejected, computed.extra
        if self.options.corpus is not None and rejected is None:
            grounded = self.ground(sampling_seed=sampling_seed, **fields)
            grounding, rejected = grounded.grounding, grounded.rejected
        record = Record(
            id=slot.id, fields=fields, label=final, constrained_label=label, relabeled=relabeled,
            context=slot.context, seed=slot.seed, reasoning=reasoning, attributes=slot.attribute_values,
            rewrites=rewrites, critiques=critiques, verification=verification, grounding=grounding,
            rejected=rejected,
        )  # fmt: skip
        return dspy.Prediction(record=record)
