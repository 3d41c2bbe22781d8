"""Code-based verification (DataGen): the model writes a Python program that computes an instance's
answer from the problem alone, the sandbox runs it, and the computed answer decides. An answer that
differs from the instance's label relabels it; a program that fails (an error, a limit, no number
printed) drops the instance, and so does a program that only states a number instead of calculating it."""

from __future__ import annotations

import ast
import math
import re
from typing import Any

import dspy

from targen_dspy.errors import SpecError
from targen_dspy.signatures import TaskSpec
from targen_dspy.signatures.verification import solution_signature
from targen_dspy.verify.sandbox import SandboxLimits, run_python

_FENCE = re.compile(r"^\s*```[\w+-]*[ \t]*\n?(.*?)\n?```\s*$", re.DOTALL)


def strip_fences(code: str) -> str:
    """The program without the Markdown code fence a model may wrap it in."""
    match = _FENCE.match(code)
    return match.group(1) if match else code


def computes(code: str) -> bool:
    """Whether the program calculates anything (an operator, or a call other than print), rather than only
    stating a number; a program that does not parse is left to the sandbox to report."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp | ast.AugAssign):
            return True
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id == "print"):
            return True
    return False


class CodeVerifier(dspy.Module):
    def __init__(self, spec: TaskSpec, limits: SandboxLimits | None = None):
        super().__init__()
        if spec.label_type not in ("integer", "number"):
            raise SpecError(
                f"--verify-code needs a task whose label is a number a program can compute "
                f"(label_type: integer or number, such as math_word); {spec.name}'s is not"
            )
        self.spec = spec
        self.limits = limits or SandboxLimits()
        self.write = dspy.Predict(solution_signature(spec))

    def forward(self, label: Any, sampling_seed: int = 0, **fields: Any) -> dspy.Prediction:
        """The instance's label after verification, the record's verification columns (`extra`), and
        why it is dropped (`rejected`, None when it is kept).

        Greedy decoding, as for self-correction; the sampling seed only keys the cache."""
        written = self.write(
            task_description=self.spec.description,
            label_description=self.spec.label_description,
            **{name: fields[name] for name in self.spec.correction_fields},
            config={"temperature": 0.0, "seed": sampling_seed},
        )
        code = strip_fences(written.solution_code)
        extra: dict[str, Any] = {"solution_code": code}
        if not computes(code):  # `print(42)` restates an answer; it does not check one
            reason = "the solution program calculates nothing, it only states a number"
            return dspy.Prediction(label=label, extra=extra, rejected={"by": "code", "reason": reason})
        result = run_python(code, self.limits)
        answer = result.answer
        if not result.ok:
            reason = f"the solution program failed: {result.error}"
        elif self.spec.label_type == "integer" and not float(answer).is_integer():
            reason = f"the solution program computed {answer}, not a whole number"
        else:
            answer = int(answer) if self.spec.label_type == "integer" else answer
            agrees = _is_number(label) and math.isclose(answer, label, rel_tol=1e-9, abs_tol=1e-9)
            extra.update(verified_answer=answer, relabeled_by_code=not agrees)
            return dspy.Prediction(label=label if agrees else answer, extra=extra, rejected=None)
        return dspy.Prediction(label=label, extra=extra, rejected={"by": "code", "reason": reason})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
