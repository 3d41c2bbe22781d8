"""PVI on hand-made features with known answers: no embedding model needed."""

import numpy as np
import pytest

from targen_dspy.analysis.classifier import Encoded
from targen_dspy.analysis.pvi import pvi

RNG = np.random.default_rng(0)
LABELS = np.array(['"yes"', '"no"'] * 20)
SIGN = np.where(LABELS == '"yes"', 1.0, -1.0)


def test_constant_label_carries_no_information():
    result = pvi(Encoded(RNG.normal(size=(12, 1, 5)), np.array(['"yes"'] * 12)))
    assert np.array_equal(result.values, np.zeros(12))
    assert result.accuracy == 1.0


def test_separable_balanced_labels_approach_one_bit():
    x = SIGN[:, None, None] + 0.1 * RNG.normal(size=(40, 1, 8))
    result = pvi(Encoded(x, LABELS))
    assert result.accuracy == 1.0
    assert 0.9 < result.v_information <= 1.0  # H(Y) of a balanced binary label is 1 bit
    assert (result.values > 0).all()


def test_labels_unrelated_to_the_input_carry_little():
    result = pvi(Encoded(RNG.normal(size=(40, 1, 8)), LABELS))
    assert result.v_information < 0.15


def test_a_flipped_label_gets_the_lowest_pvi():
    x = SIGN[:, None, None] + 0.1 * RNG.normal(size=(40, 1, 8))
    labels = LABELS.copy()
    labels[3] = '"no"' if labels[3] == '"yes"' else '"yes"'
    result = pvi(Encoded(x, labels))
    assert result.values.argmin() == 3 and result.values[3] < 0


def test_multiple_choice_scores_each_choice():
    right = np.where(np.arange(40) % 2 == 0, 0, 1)
    x = 0.1 * RNG.normal(size=(40, 2, 6))
    x[np.arange(40), right] += 1.0  # the right choice stands out
    result = pvi(Encoded(x, right))
    assert result.accuracy == 1.0 and result.v_information > 0.9


def test_too_few_instances_of_a_label_gives_none():
    assert pvi(Encoded(RNG.normal(size=(5, 1, 3)), np.array(['"a"'] * 4 + ['"b"']))) is None


@pytest.mark.parametrize("folds", [2, 5])
def test_every_instance_is_scored_once_and_deterministically(folds):
    data = Encoded(SIGN[:, None, None] + RNG.normal(size=(40, 1, 8)), LABELS)
    first, second = pvi(data, folds=folds), pvi(data, folds=folds)
    assert first.folds == folds and np.isfinite(first.values).all()
    assert np.array_equal(first.values, second.values)
