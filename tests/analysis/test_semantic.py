import numpy as np
import pytest

from targen_dspy.analysis import semantic
from targen_dspy.analysis.semantic import COSINE_EDGES, cosine_stats
from targen_dspy.text.vectors import unit_rows


def test_duplicate_texts_have_cosine_one(encoder):
    vectors = encoder.embed(["The cat sat on the mat.", "The cat sat on the mat."])
    stats = cosine_stats(vectors)
    assert stats.mean == pytest.approx(1.0, abs=1e-5)
    assert stats.near_duplicate_rate == 1.0
    assert stats.histogram[-1] == 1


def test_unrelated_texts_are_not_near_duplicates(encoder):
    vectors = encoder.embed(["The cat sat on the mat.", "Interest rates rose by half a point in March."])
    stats = cosine_stats(vectors)
    assert stats.mean < 0.3
    assert stats.near_duplicate_rate == 0.0


def test_orthogonal_and_opposite_vectors():
    orthogonal = cosine_stats(np.eye(3, dtype=np.float32))
    assert orthogonal.mean == 0.0 and orthogonal.near_duplicate_rate == 0.0
    assert orthogonal.histogram[np.searchsorted(COSINE_EDGES, 0.0, side="right") - 1] == 3
    opposite = cosine_stats(unit_rows(np.array([[1.0, 2.0], [-1.0, -2.0]])))
    assert opposite.mean == pytest.approx(-1.0)
    assert opposite.histogram[0] == 1


def test_blocked_computation_matches_the_full_matrix(monkeypatch):
    monkeypatch.setattr(semantic, "_BLOCK", 3)  # several blocks, and a ragged last one
    rng = np.random.default_rng(0)
    vectors = unit_rows(rng.normal(size=(10, 4)))
    vectors[7] = vectors[2]  # one exact duplicate pair
    stats = cosine_stats(vectors, threshold=0.99)
    full = vectors @ vectors.T
    pairs = full[np.triu_indices(10, k=1)]
    assert stats.mean == pytest.approx(pairs.mean())
    assert np.array_equal(stats.histogram, np.histogram(np.clip(pairs, -1, 1), bins=COSINE_EDGES)[0])
    np.fill_diagonal(full, -np.inf)
    assert stats.near_duplicate_rate == pytest.approx(np.mean(full.max(axis=1) >= 0.99)) == 0.2
