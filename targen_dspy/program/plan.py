"""Planning a run: which (context, seed, label) slot makes each instance, from the contexts and seeds as
they are written; how many slots each label gets is the task's label policy's (`LabelPolicy.planned`)."""

from __future__ import annotations

import itertools
import random
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from targen_dspy.signatures import TaskSpec
from targen_dspy.signatures.labels import label_policy
from targen_dspy.signatures.spec import LabelValue, label_text


@dataclass(frozen=True)
class Material:
    """A context and the seeds written in it (materials.json keeps them as `[context, seeds]`)."""

    context: str
    seeds: tuple[str, ...]


@dataclass(frozen=True)
class Slot:
    """One instance to make. `id` is deterministic, so a resumed run recognises slots already done."""

    id: str
    context: str
    seed: str
    label: LabelValue | None  # None for an open label: the model writes it
    attributes: tuple[tuple[str, str], ...] = ()  # (attribute, value) pairs, in spec order
    failed_before: int = 0  # invocations in which this slot failed: a rerun asks with other seeds

    @property
    def attribute_values(self) -> dict[str, str]:
        return dict(self.attributes)

    @property
    def sampling_seed(self) -> int:
        """Per-slot sampling seed: identical prompts of different slots still give distinct instances,
        and the same slot replays from the cache. A slot that failed (every attempt unusable) gets new
        seeds when the run is resumed: with the same ones, a seeded model would write the same answers."""
        key = self.id if not self.failed_before else f"{self.id}/rerun {self.failed_before}"
        return zlib.crc32(key.encode())


def seeds_needed(spec: TaskSpec, n: int) -> int:
    """Each seed serves one slot per label, so the most frequent label sets the number of seeds."""
    return max(label_policy(spec).planned(n).values())


def attribute_combinations(spec: TaskSpec) -> list[tuple[tuple[str, str], ...]]:
    """Every combination of the spec's attribute values, in a fixed order (one empty one without any)."""
    names = list(spec.attributes)
    return [tuple(zip(names, values, strict=True)) for values in itertools.product(*spec.attributes.values())]


def combination_index(k: int, combinations: int) -> int:
    """The combination the k-th seed's slots get. Each block of `combinations` consecutive seeds takes
    every combination once, in a fixed shuffled order per block, so that every label (it uses the first
    seeds) gets each combination equally often, give or take one, and combinations do not follow the
    contexts."""
    block, position = divmod(k, combinations)
    order = list(range(combinations))
    random.Random(block).shuffle(order)
    return order[position]


def plan_slots(spec: TaskSpec, n: int, materials: Iterable[Material]) -> Iterator[Slot]:
    """The run's slots, yielded as the contexts and their seeds arrive (the engine starts making
    instances before the last seeds are written). Contexts are taken in order, each with all its seeds:
    the engine asks for just enough contexts, so a run spans all of them. Seed k carries one slot for
    every label that still needs more than k instances. With attributes, the slots of seed k get
    combination `combination_index(k)`, the same for every label, whose index ends the slot's id.

    `materials` is read to its end, so that its producer can finish (and save) what it started."""
    counts = label_policy(spec).planned(n)
    needed = max(counts.values())
    combinations = attribute_combinations(spec)
    k = 0
    for ci, material in enumerate(materials):
        for si, seed in enumerate(material.seeds):
            if k == needed:
                break
            ai = combination_index(k, len(combinations))
            suffix = f"-a{ai}" if spec.attributes else ""
            for li, label in enumerate(counts):
                if counts[label] > k:
                    yield Slot(f"c{ci}-s{si}-l{li}{suffix}", material.context, seed, label, combinations[ai])
            k += 1
    if k < needed:
        raise ValueError(f"{k} seeds for {needed} needed")


# Final labels this lopsided in a run planned otherwise mean the corrector, not the data, decided them;
# below LOPSIDED_MIN kept instances that is too likely by chance (6 of 6 on one of two labels: 3 %).
LOPSIDED_MIN = 6
LOPSIDED_SHARE = 0.8


def lopsided(spec: TaskSpec, n: int, final: dict[str, int]) -> str | None:
    """A warning when self-correction moved one label over LOPSIDED_SHARE of the final labels (keyed as
    in the data, as in run stats) although the plan gave it less, else None."""
    total = sum(final.values())
    labels = label_policy(spec)
    if labels.open or total < LOPSIDED_MIN:
        return None
    planned = {label_text(value): count for value, count in labels.planned(n).items()}
    key, count = max(final.items(), key=lambda item: item[1])
    share, planned_share = count / total, planned.get(key, 0) / n
    if share <= LOPSIDED_SHARE or planned_share >= LOPSIDED_SHARE:
        return None
    return (
        f"self-correction moved {share:.0%} of the final labels to {key} (planned {planned_share:.0%}): a "
        "corrector this one-sided can ruin the data; try --correction filter (keeps the planned balance) "
        "or a stronger --corrector-model"
    )
