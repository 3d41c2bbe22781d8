"""The sample a reviewer annotates: stratified by final label and by relabeled or not, and the same on
every reload (seeded), so that reopening the page resumes the same review."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from targen_dspy.review.index import Entry

SHARE = 0.2  # the TarGEN paper had a fifth of each synthetic set checked by people


def stratified_sample(entries: Sequence[Entry], share: float = SHARE, seed: int = 0) -> list[str]:
    """The ids of `share` of the instances of each stratum (final label x relabeled), at least one of
    each, in a seeded shuffled order so that a review stopped part-way is still a random subsample.

    Every stratum gives the same share (rounded up), so the plain agreement over the sample estimates
    that of the whole run. The draw depends only on `seed` and the instances, in file order."""
    if not 0 < share <= 1:
        raise ValueError(f"the sample share must be in (0, 1], got {share}")
    strata: dict[tuple[str, bool], list[str]] = {}
    seen: set[str] = set()
    for entry in entries:
        if entry.id not in seen:  # an id written twice (a hand-edited run) is one instance to review
            seen.add(entry.id)
            strata.setdefault((entry.label, entry.relabeled), []).append(entry.id)
    rng = random.Random(seed)
    picked = [
        chosen
        for key in sorted(strata)
        for chosen in rng.sample(strata[key], math.ceil(share * len(strata[key])))
    ]
    rng.shuffle(picked)
    return picked
