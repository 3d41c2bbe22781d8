import math
from collections import Counter

import pytest

from targen_dspy.review.index import Entry
from targen_dspy.review.sample import stratified_sample


def entries(counts):
    """Instances per (label, relabeled) stratum, as the index has them."""
    made = []
    for (label, relabeled), count in counts.items():
        made += [
            Entry("data", len(made), f"{label}-{relabeled}-{i}", label, label, relabeled)
            for i in range(count)
        ]
    return made


COUNTS = {('"a"', False): 40, ('"a"', True): 7, ('"b"', False): 50, ('"b"', True): 3}


def test_each_stratum_gives_its_share_rounded_up():
    run = entries(COUNTS)
    sample = stratified_sample(run, 0.2, seed=0)
    by_id = {entry.id: (entry.label, entry.relabeled) for entry in run}
    assert Counter(by_id[i] for i in sample) == {key: math.ceil(0.2 * n) for key, n in COUNTS.items()}
    assert len(set(sample)) == len(sample)


def test_the_same_seed_draws_the_same_sample_and_another_seed_another():
    run = entries(COUNTS)
    assert stratified_sample(run, 0.2, seed=3) == stratified_sample(list(run), 0.2, seed=3)
    assert set(stratified_sample(run, 0.2, seed=3)) != set(stratified_sample(run, 0.2, seed=4))


def test_strata_are_interleaved_not_in_blocks():
    sample = stratified_sample(entries(COUNTS), 0.5, seed=0)
    first_half = {i.split("-")[0] for i in sample[: len(sample) // 2]}
    assert first_half == {'"a"', '"b"'}


def test_the_share_is_checked():
    with pytest.raises(ValueError):
        stratified_sample(entries(COUNTS), 0)


def test_an_id_written_twice_is_sampled_once():
    run = entries({('"a"', False): 3})
    twice = [*run, Entry("data", 99, run[0].id, '"b"', '"b"', True)]
    assert sorted(stratified_sample(twice, 1.0)) == sorted(entry.id for entry in run)
