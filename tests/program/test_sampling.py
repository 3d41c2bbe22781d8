"""Which references each self-reference strategy picks, on a hand-made pool with known geometry."""

import random

import numpy as np
import pytest

from targen_dspy.program.sampling import next_references
from targen_dspy.text.vectors import record_vectors

# Three clusters on the unit circle: sport near (1, 0), finance near (0, 1), art near (-1, 0).
VECTORS = {
    "sport a": (1.0, 0.0),
    "sport b": (0.95, 0.1),
    "sport c": (0.9, -0.1),
    "finance a": (0.0, 1.0),
    "finance b": (0.1, 0.95),
    "art a": (-1.0, 0.0),
    "art b": (-0.9, -0.3),
}
POOL = [{"id": name, "text": name} for name in VECTORS]
LAST = [POOL[0], POOL[1]]  # the last batch: two sport examples


def embed(texts):
    return np.array([VECTORS[t] for t in texts])


def vectors(records):
    return record_vectors(records, ["text"], embed)


def pick(strategy, k=2, seed=0):
    return next_references(strategy, POOL, LAST, k, random.Random(seed), vectors)


def ids(reference_sets):
    return [[r["id"] for r in refs] for refs in reference_sets]


def test_similar_picks_the_closest_outside_the_last_batch():
    assert ids(pick("similar")) == [["sport c", "finance b"]]


def test_contrastive_picks_the_farthest():
    assert ids(pick("contrastive")) == [["art a", "art b"]]


def test_tree_makes_one_call_per_last_output():
    assert ids(pick("tree")) == [["sport a"], ["sport b"]]


def test_random_draws_k_from_the_whole_pool_reproducibly():
    first, again, other = pick("random", k=3), pick("random", k=3), pick("random", k=3, seed=1)
    assert len(first[0]) == 3 and len({r["id"] for r in first[0]}) == 3
    assert ids(first) == ids(again) and ids(first) != ids(other)


def test_similarity_strategies_need_embeddings_and_known_names():
    with pytest.raises(ValueError, match="needs sentence embeddings"):
        next_references("similar", POOL, LAST, 2, random.Random(0), None)
    with pytest.raises(ValueError, match="unknown strategy"):
        next_references("greedy", POOL, LAST, 2, random.Random(0), vectors)
