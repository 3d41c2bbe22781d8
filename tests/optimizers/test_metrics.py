import dspy

from targen_dspy.optimizers import correction_metric, generation_metric
from targen_dspy.optimizers.metrics import materials_metric
from targen_dspy.program import SelfCorrector
from tests.conftest import json_lm


def instance(premise: str, hypothesis: str) -> dspy.Prediction:
    """An instance step's output: the fields, and the label it was written for."""
    return dspy.Prediction(fields={"premise": premise, "hypothesis": hypothesis}, label="entailment")


def corrector_case(proposed: str, true: str) -> dspy.Example:
    return dspy.Example(premise="p", hypothesis="h", proposed_label=proposed, corrected_label=true)


def test_correction_metric_scores_the_true_label_whatever_was_proposed():
    for proposed in ("entailment", "not_entailment"):
        case = corrector_case(proposed, "entailment")
        assert correction_metric(case, dspy.Prediction(label="entailment")) == 1.0
        assert correction_metric(case, dspy.Prediction(label="not_entailment")) == 0.0
        assert correction_metric(case, dspy.Prediction(label="entailment"), trace=[]) is True


def test_correction_metric_gives_gepa_feedback():
    result = correction_metric(
        corrector_case("not_entailment", "entailment"),
        dspy.Prediction(label="not_entailment"),
        None,
        "check",
        None,
    )
    assert result.score == 0.0 and "true label is 'entailment'" in result.feedback


def judged(rte, verdict_label: str):
    judge = SelfCorrector(rte)
    judge.set_lm(json_lm([{"reasoning": "read it", "corrected_label": verdict_label}] * 5))
    return generation_metric(rte, judge, gold_texts={"a gold hypothesis"})


def slot(seed: str = "The club won the cup.") -> dspy.Example:
    return dspy.Example(setting="sport", seed=seed, label="entailment").with_inputs(
        "setting", "seed", "label"
    )


def test_generation_metric_right_label_scores_1(rte):
    metric = judged(rte, "entailment")
    with dspy.context(adapter=dspy.JSONAdapter()):
        assert metric(slot(), instance("The club won the cup.", "The club won.")) == 1.0


def test_generation_metric_wrong_label_scores_0_with_feedback(rte):
    metric = judged(rte, "not_entailment")
    pred = instance("The club won the cup.", "The club lost.")
    with dspy.context(adapter=dspy.JSONAdapter()):
        assert metric(slot(), pred) == 0.0
        feedback = metric(slot(), pred, None, "write", None)
    assert feedback.score == 0.0 and "judge labels it 'not_entailment'" in feedback.feedback


def test_generation_metric_copied_seed_or_gold_scores_0_without_asking_the_judge(rte):
    metric = judged(rte, "entailment")
    copied_seed = instance("The club won the cup.", "the club won the cup")
    copied_gold = instance("The club won the cup.", "A gold hypothesis.")
    assert metric(slot(), copied_seed) == 0.0
    assert metric(slot(), copied_gold) == 0.0
    assert "copies the seed" in metric(slot(), copied_seed, None, "write", None).feedback


def test_materials_metric_counts_distinct_task_shaped_items(rte):
    metric = materials_metric(rte, "contexts", min_words=2)
    ask = dspy.Example(count=4)
    written = ["A", "Sports news desk", "sports news desk.", rte.context]  # short, a duplicate, a copy
    assert metric(ask, dspy.Prediction(contexts=written)) == 0.25
    assert metric(ask, dspy.Prediction(contexts=written), trace=[]) is False
    feedback = metric(ask, dspy.Prediction(contexts=written), None, "propose", None).feedback
    assert "fewer than 2 words: ['A']" in feedback and "copies the task's own text" in feedback
    good = ["Sports news desk", "A city hospital ward", "Geopolitical news", "A school science lab"]
    assert metric(ask, dspy.Prediction(contexts=good), trace=[]) is True
