"""What the teleprompters optimize. Metrics follow DSPy's convention `metric(example, pred, trace=None)`:
a float for evaluation, pass/fail when `trace` is set (bootstrapping). GEPA also passes `pred_name`
and `pred_trace` and gets a score with textual feedback saying which part failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dspy

from targen_dspy.program import SelfCorrector
from targen_dspy.program.distinct import normalise
from targen_dspy.signatures import TaskSpec
from targen_dspy.text.shape import ShapeCheck


def correction_metric(
    example: dspy.Example,
    pred: dspy.Prediction,
    trace: Any = None,
    pred_name: str | None = None,
    pred_trace: Any = None,
) -> float | bool | dspy.Prediction:
    """Self-correction: did the corrector return the true label, whether the proposed one was right or not?"""
    right = pred.label == example.corrected_label
    kind = "kept a right" if example.proposed_label == example.corrected_label else "fixed a wrong"
    feedback = (
        f"Correct: {kind} proposed label."
        if right
        else f"Wrong: answered {pred.label!r}; the true label is {example.corrected_label!r} "
        f"(proposed {example.proposed_label!r}). Re-read the label meanings."
    )
    return _result(float(right), feedback, trace, pred_name)


def generation_metric(spec: TaskSpec, judge: SelfCorrector, gold_texts: set[str]) -> Callable[..., Any]:
    """Label-constrained generation: an instance scores when it parsed (else the metric never runs),
    copies neither its seed nor a gold example, and the independent `judge` gives it the label it
    was written for."""

    def metric(
        example: dspy.Example,
        pred: dspy.Prediction,
        trace: Any = None,
        pred_name: str | None = None,
        pred_trace: Any = None,
    ) -> float | bool | dspy.Prediction:
        fields = pred.fields
        problems = []
        written = [str(fields[name]) for name in spec.fields if name != spec.seed.field]
        if any(normalise(text) == normalise(str(example.seed)) for text in written):
            problems.append("a field copies the seed instead of building on it")
        if any(normalise(text) in gold_texts for text in written):
            problems.append("a field copies a validation example")
        if not problems:
            verdict = judge(proposed_label=example.label, **fields)
            if verdict.label != example.label:
                problems.append(
                    f"an independent judge labels it {verdict.label!r}, not {example.label!r} "
                    f"({verdict.reasoning})"
                )
        feedback = "; ".join(problems) or "Good: the judge agrees with the target label."
        return _result(0.0 if problems else 1.0, feedback, trace, pred_name)

    return metric


def materials_metric(spec: TaskSpec, output: str, min_words: int) -> Callable[..., Any]:
    """The contexts and seeds steps: the share of the `count` items asked for that came back
    task-shaped (at least `min_words` words, no copy of the spec's own text or label name; the shape
    check of `text.shape`) and distinct."""
    shape = ShapeCheck(spec)

    def metric(
        example: dspy.Example,
        pred: dspy.Prediction,
        trace: Any = None,
        pred_name: str | None = None,
        pred_trace: Any = None,
    ) -> float | bool | dspy.Prediction:
        items = [str(item) for item in getattr(pred, output)]
        short = [item for item in items if len(item.split()) < min_words]
        copies = [item for item in items if shape.copies_spec(item) or shape.is_label(item)]
        good = {normalise(item) for item in items if item not in short and item not in copies}
        problems = [f"fewer than {min_words} words: {short[:3]}"] if short else []
        problems += [f"copies the task's own text: {copies[:3]}"] if copies else []
        if len(good) < example.count:
            problems.append(f"{len(good)} distinct usable {output} of the {example.count} asked for")
        feedback = "; ".join(problems) or f"Good: {example.count} distinct, task-shaped {output}."
        return _result(min(1.0, len(good) / example.count), feedback, trace, pred_name)

    return metric


def _result(score: float, feedback: str, trace: Any, pred_name: str | None) -> float | bool | dspy.Prediction:
    """A metric's answer in the form its caller wants: GEPA (`pred_name` set) the score with feedback,
    bootstrapping (`trace` set) pass/fail, evaluation the score."""
    if pred_name is not None:
        return dspy.Prediction(score=score, feedback=feedback)
    return score >= 1.0 if trace is not None else score
