"""Compiling a tuned TarGEN program: a DSPy teleprompter tunes the self-correction step on the gold
set, then the label-constrained generation step with the tuned corrector (or a separate judge) as
the independent judge. The gold examples that report the final figure are held out throughout."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, TypeVar

import dspy

from targen_dspy.engine.limits import PARSE_ATTEMPTS, Unparseable, until_parsed
from targen_dspy.errors import RunError, SpecError
from targen_dspy.optimizers.gold import correction_examples, gold_texts, split_gold
from targen_dspy.optimizers.metrics import correction_metric, generation_metric, materials_metric
from targen_dspy.program import SelfCorrector, TarGEN
from targen_dspy.signatures import TaskSpec

logger = logging.getLogger(__name__)
T = TypeVar("T")

OPTIMIZERS = ("bootstrap", "mipro", "gepa")
MATERIALS_PER_CALL = 4  # contexts (or seeds) asked for per tuning call
# Fewer words than this is not a setting ("A", "true") or a seed ("Alejandro"), whatever the task.
MIN_WORDS = {"contexts": 2, "seeds": 3}


@dataclass(frozen=True)
class CompileSettings:
    optimizer: Literal["bootstrap", "mipro", "gepa"] = "bootstrap"
    held_out: float = 0.3  # share of the gold set kept for the final figure only
    seed: int = 0
    max_demos: int = 4
    candidates: int = (
        0  # bootstrap: >0 searches that many candidate programs (BootstrapFewShotWithRandomSearch)
    )
    auto: Literal["light", "medium", "heavy"] = "light"  # mipro and gepa budget
    generation_slots: int = 8  # (setting, seed, label) slots used to tune and score generation
    materials_calls: int = 4  # contexts calls, and seeds calls, used to tune and to score each step
    threads: int = 1
    log_dir: str | None = None  # gepa: a compile interrupted and restarted with the same dir resumes

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise SpecError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not 0 < self.held_out < 1:
            raise SpecError(f"--held-out must be between 0 and 1, got {self.held_out}")


def teleprompter(
    settings: CompileSettings,
    metric: Any,
    *,
    labeled_demos: bool,
    reflection_lm: dspy.LM | None,
    task_lm: dspy.LM | None = None,
    log_dir: str | None = None,
):
    """The DSPy teleprompter named by `settings.optimizer`, configured for small gold sets."""
    labeled = settings.max_demos if labeled_demos else 0
    if settings.optimizer == "bootstrap":
        if settings.candidates:
            return dspy.BootstrapFewShotWithRandomSearch(
                metric=metric,
                max_bootstrapped_demos=settings.max_demos,
                max_labeled_demos=labeled,
                num_candidate_programs=settings.candidates,
                num_threads=settings.threads,
            )
        return dspy.BootstrapFewShot(
            metric=metric, max_bootstrapped_demos=settings.max_demos, max_labeled_demos=labeled
        )
    if settings.optimizer == "mipro":
        return dspy.MIPROv2(
            metric=metric,
            prompt_model=reflection_lm,
            task_model=task_lm,
            auto=settings.auto,
            max_bootstrapped_demos=settings.max_demos,
            max_labeled_demos=labeled,
            num_threads=settings.threads,
            seed=settings.seed,
            log_dir=log_dir,
        )
    if reflection_lm is None:
        raise SpecError("--optimizer gepa needs a reflection model: pass --reflection-model")
    return dspy.GEPA(
        metric=metric,
        auto=settings.auto,
        reflection_lm=reflection_lm,
        log_dir=log_dir,
        num_threads=settings.threads,
        seed=settings.seed,
    )


def _tune(
    step: dspy.Module,
    trainset: list[dspy.Example],
    metric: Any,
    settings: CompileSettings,
    *,
    labeled_demos: bool,
    reflection_lm: dspy.LM | None,
    log_dir: str | None,
) -> dspy.Module:
    """A tuned copy of one step. Teleprompters reset their students' models, so the step's model is
    made the context's while it is tuned and set on the result."""
    lm = step.predictors()[0].lm
    optimizer = teleprompter(
        settings,
        metric,
        labeled_demos=labeled_demos,
        reflection_lm=reflection_lm,
        task_lm=lm,
        log_dir=log_dir,
    )
    with dspy.context(lm=lm):
        if isinstance(optimizer, dspy.BootstrapFewShot):
            compiled = optimizer.compile(step.deepcopy(), trainset=trainset)
        else:
            compiled = optimizer.compile(step.deepcopy(), trainset=trainset, valset=trainset)
    # A compiled module is hidden from its parent's parameters (so from save/load); the TarGEN program
    # saves its steps, so it gets a plain copy of the step with the tuned state.
    tuned = step.deepcopy()
    tuned.load_state(compiled.dump_state())
    tuned.set_lm(lm)
    return tuned


class _InOrder:
    """The program's `Scheduler` while tuning: stage calls one after another, each asked again while
    its answer does not parse, as in a run."""

    def map(self, step: str, stage: Callable[[Any, int], T], items: Sequence[Any]) -> Iterator[T]:
        for item in items:
            yield until_parsed(step, partial(stage, item), item.sampling_seed, PARSE_ATTEMPTS)


def tuning_slots(program: TarGEN, count: int) -> list[dspy.Example]:
    """`count` (setting, seed, label) slots planned by the program's own stages, as in a run: tuning
    stays seedless. A step whose answers never parse is a RunError."""
    materials = program.materials(count, [], _InOrder(), MATERIALS_PER_CALL, save=lambda materials: None)
    try:
        planned = list(program.plan(count, materials))
    except Unparseable as exc:
        model = program.contexts.propose.lm or dspy.settings.lm
        raise RunError(
            f"{exc.describe(getattr(model, 'model', 'the model'))}; try a stronger --model"
        ) from None
    return [
        dspy.Example(setting=slot.context, seed=slot.seed, label=slot.label).with_inputs(
            "setting", "seed", "label"
        )
        for slot in planned
    ]


def majority_share(spec: TaskSpec, rows: list[dict[str, Any]]) -> float:
    """The accuracy (percent) of always answering the most frequent label of `rows`: a corrector no
    better than this adds noise when it relabels."""
    counts = Counter(json.dumps(row[spec.label_field]) for row in rows)
    return round(100 * max(counts.values()) / len(rows), 2)


def _score(
    module: dspy.Module, devset: list[dspy.Example], metric: Any, settings: CompileSettings, progress: bool
) -> float:
    evaluate = dspy.Evaluate(
        devset=devset,
        metric=metric,
        num_threads=settings.threads,
        display_progress=progress,
        max_errors=len(devset) + 1,
    )
    return round(float(evaluate(module).score), 2)


def compile_program(
    program: TarGEN,
    gold: list[dict[str, Any]],
    settings: CompileSettings,
    *,
    judge: SelfCorrector | None = None,
    reflection_lm: dspy.LM | None = None,
    progress: bool = True,
) -> tuple[TarGEN, dict[str, Any]]:
    """A tuned copy of `program` and the scores (percent) of hand-written vs compiled on held-out data."""
    spec = program.spec
    split = split_gold(gold, settings.held_out, settings.seed)
    log_dir = settings.log_dir

    logger.info("tuning self-correction on %d gold examples", len(split.train))
    correction_train = correction_examples(spec, split.train, settings.seed)
    correction_test = correction_examples(spec, split.held_out, settings.seed + 1)
    corrector = _tune(
        program.correct, correction_train, correction_metric, settings,
        labeled_demos=True, reflection_lm=reflection_lm, log_dir=log_dir and f"{log_dir}/correction",
    )  # fmt: skip

    logger.info("tuning the contexts and seeds steps on %d calls each", settings.materials_calls)
    compiled = program.deepcopy()
    compiled.contexts, compiled.seeds, materials_scores = _tune_materials(
        program, settings, reflection_lm=reflection_lm, progress=progress
    )

    logger.info("tuning label-constrained generation on %d slots", settings.generation_slots)
    slots = tuning_slots(compiled, 2 * settings.generation_slots)
    generation_train, generation_test = slots[: settings.generation_slots], slots[settings.generation_slots :]
    metric = generation_metric(spec, judge or corrector, gold_texts(spec, gold))
    generator = _tune(
        program.generate, generation_train, metric, settings,
        labeled_demos=False, reflection_lm=reflection_lm, log_dir=log_dir and f"{log_dir}/generation",
    )  # fmt: skip

    compiled.correct, compiled.generate = corrector, generator
    scores = {
        "held_out_gold_examples": len(split.held_out),
        "correction_accuracy": {
            "hand_written": _score(program.correct, correction_test, correction_metric, settings, progress),
            "compiled": _score(corrector, correction_test, correction_metric, settings, progress),
            "majority_class": majority_share(spec, split.held_out),
        },
        "generation_score": {
            "hand_written": _score(program.generate, generation_test, metric, settings, progress),
            "compiled": _score(generator, generation_test, metric, settings, progress),
        },
        **materials_scores,
    }
    return compiled, scores


def _tune_materials(
    program: TarGEN, settings: CompileSettings, *, reflection_lm: dspy.LM | None, progress: bool
) -> tuple[dspy.Module, dspy.Module, dict[str, Any]]:
    """Tuned copies of the contexts and seeds steps, and their held-out scores: the share of the items
    asked for that came back task-shaped and distinct (`materials_metric`). Seeds are tuned on
    settings the tuned contexts step writes."""
    spec, k, log_dir = program.spec, settings.materials_calls, settings.log_dir
    asks = [
        dspy.Example(count=MATERIALS_PER_CALL, sampling_seed=settings.seed + i).with_inputs(
            "count", "sampling_seed"
        )
        for i in range(2 * k)
    ]
    contexts_metric = materials_metric(spec, "contexts", MIN_WORDS["contexts"])
    contexts = _tune(
        program.contexts, asks[:k], contexts_metric, settings,
        labeled_demos=False, reflection_lm=reflection_lm, log_dir=log_dir and f"{log_dir}/contexts",
    )  # fmt: skip
    written = until_parsed("contexts", partial(contexts, count=2 * k), settings.seed, PARSE_ATTEMPTS).contexts
    if not written:
        raise RunError("the model wrote no contexts to tune the seeds step on; try a stronger --model")
    seed_asks = [
        dspy.Example(setting=written[i % len(written)], **ask).with_inputs(
            "setting", "count", "sampling_seed"
        )
        for i, ask in enumerate(asks)
    ]
    seeds_metric = materials_metric(spec, "seeds", MIN_WORDS["seeds"])
    seeds = _tune(
        program.seeds, seed_asks[:k], seeds_metric, settings,
        labeled_demos=False, reflection_lm=reflection_lm, log_dir=log_dir and f"{log_dir}/seeds",
    )  # fmt: skip
    scores = {
        f"{name}_score": {
            "hand_written": _score(step, test, metric, settings, progress),
            "compiled": _score(tuned, test, metric, settings, progress),
        }
        for name, step, tuned, test, metric in [
            ("contexts", program.contexts, contexts, asks[k:], contexts_metric),
            ("seeds", program.seeds, seeds, seed_asks[k:], seeds_metric),
        ]
    }
    return contexts, seeds, scores
