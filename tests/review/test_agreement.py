import pytest

from targen_dspy.review.agreement import agreement, wilson


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
    ],
)
def test_wilson_interval_matches_published_values(successes, n, low, high):
    assert wilson(successes, n) == pytest.approx((low, high), abs=5e-5)


def test_wilson_without_answers_is_the_whole_range_and_rejects_impossible_counts():
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(4, 3)


def test_agreement_with_final_and_constrained_labels():
    answers = [
        {"label": "a", "final_label": "a", "constrained_label": "a"},
        {"label": "a", "final_label": "a", "constrained_label": "b"},  # self-correction was right
        {"label": "b", "final_label": "a", "constrained_label": "b"},  # self-correction was wrong
        {"label": None, "not_instance": True, "final_label": "a", "constrained_label": "a"},
        {"label": True, "final_label": 1},  # labels compare as JSON; no constrained label (self-reference)
    ]
    result = agreement(answers)
    assert (result.final.agree, result.final.n) == (2, 5)
    assert (result.constrained.agree, result.constrained.n) == (2, 4)
    assert result.not_instance == 1
    assert result.final.interval == wilson(2, 5)
    assert result.describe()[0].startswith("reviewer vs final label: 40.0% (95% CI 11.8%-76.9%), 2 of 5")


def test_agreement_of_no_answers_is_not_a_number():
    result = agreement([])
    assert result.final.rate is None and "n/a" in result.final.describe()
    assert result.as_json()["constrained"] == {"agree": 0, "n": 0, "rate": None, "low": 0.0, "high": 1.0}
