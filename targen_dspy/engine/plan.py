"""Planning a run: how many instances per label, and which (context, seed, label) slot makes each one."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

from targen_dspy.signatures import TaskSpec
from targen_dspy.signatures.spec import LabelValue


@dataclass(frozen=True)
class Slot:
    """One instance to make. `id` is deterministic, so a resumed run recognises slots already done."""

    id: str
    context: str
    seed: str
    label: LabelValue

    @property
    def sampling_seed(self) -> int:
        """Per-slot sampling seed: identical prompts of different slots still give distinct instances,
        and the same slot replays from the cache."""
        return zlib.crc32(self.id.encode())


def label_counts(spec: TaskSpec, n: int) -> dict[LabelValue, int]:
    """Exactly `n` instances split over the labels by weight (equal by default), largest remainder first."""
    total = sum(label.weight for label in spec.labels)
    shares = [n * label.weight / total for label in spec.labels]
    counts = [math.floor(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (counts[i] - shares[i], i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return {label.value: count for label, count in zip(spec.labels, counts, strict=True)}


def seeds_needed(counts: dict[LabelValue, int]) -> int:
    """Each seed serves one slot per label, so the most frequent label sets the number of seeds."""
    return max(counts.values())


def plan_slots(spec: TaskSpec, n: int, materials: list[tuple[str, list[str]]]) -> list[Slot]:
    """The run's slots. Seeds are taken round-robin over contexts so that even a small run spans all of
    them; seed k carries one slot for every label that still needs more than k instances."""
    counts = label_counts(spec, n)
    order = [
        (ci, si)
        for si in range(max((len(seeds) for _, seeds in materials), default=0))
        for ci, (_, seeds) in enumerate(materials)
        if si < len(seeds)
    ]
    if len(order) < seeds_needed(counts):
        raise ValueError(f"{len(order)} seeds for {seeds_needed(counts)} needed")
    slots = []
    for k, (ci, si) in enumerate(order[: seeds_needed(counts)]):
        context, seeds = materials[ci]
        for li, label in enumerate(spec.label_values):
            if counts[label] > k:
                slots.append(Slot(f"c{ci}-s{si}-l{li}", context, seeds[si], label))
    return slots
