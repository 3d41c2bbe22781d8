"""The signatures of the optional verification steps (DataGen, Huang et al. 2024): a program that
computes an instance's answer, and a judge of its facts against passages of the user's documents.

As in `steps`, each docstring is the step's instruction, and the task's fields come in as typed inputs."""

from __future__ import annotations

from typing import Literal

import dspy

from targen_dspy.signatures.spec import TaskSpec

Verdict = Literal["supported", "contradicted", "not_found"]


class WriteSolution(dspy.Signature):
    """Write a short Python program that solves the problem and prints its final answer.

    Compute every quantity from the numbers the problem states, one step per line, with plain Python and
    only the standard library: no input, files or network. The program's last line prints the final
    answer alone, as a bare number."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    label_description: str = dspy.InputField(desc="What the answer is and how it is written")
    solution_code: str = dspy.OutputField(desc="The Python program, which prints the answer last")


class JudgeAgainstPassages(dspy.Signature):
    """Check the facts an example of the task asserts against passages from the user's own documents.

    Only what the example states as true counts, not a hypothesis, question or wrong choice it puts up
    for judgment. Judge by what the passages say, not by what you know: the example is supported when
    the passages state its facts, contradicted when a passage states something that cannot be true
    together with one of them, and not_found when the passages say nothing either way. Name the passage
    that decides."""

    task_description: str = dspy.InputField(desc="What the dataset is for")
    passages: list[str] = dspy.InputField(desc="Passages from the documents, each starting with its source")
    reason: str = dspy.OutputField(desc="One or two sentences: which passage decides, and why")
    verdict: Verdict = dspy.OutputField(desc="supported, contradicted or not_found")


def solution_signature(spec: TaskSpec) -> type[dspy.Signature]:
    """WriteSolution reading what the self-corrector reads: the problem without the writer's rationale,
    so that the program is an independent derivation of the answer."""
    signature = WriteSolution
    for name, field in spec.correction_fields.items():
        signature = signature.insert(
            -1, name, dspy.InputField(desc=field.description), type_=field.python_type
        )
    return signature


def judge_signature(spec: TaskSpec) -> type[dspy.Signature]:
    """JudgeAgainstPassages reading the instance's non-computed fields, before the passages."""
    signature = JudgeAgainstPassages
    for name, field in spec.checked_fields.items():
        signature = signature.insert(
            -2, name, dspy.InputField(desc=field.description), type_=field.python_type
        )
    return signature
