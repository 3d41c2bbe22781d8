"""program.json: a compiled program as plain JSON (DSPy's per-predictor state, no pickle), with the
spec hash, models, optimizer settings and scores it was compiled with."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dspy.utils.saving import get_dependency_versions

from targen_dspy.errors import SpecError
from targen_dspy.inputs import MB, excerpt, one_line, read_text
from targen_dspy.program import TarGEN
from targen_dspy.program.options import GenerationOptions
from targen_dspy.signatures import TaskSpec

RECORD_KEY = "targen"
# The keys `Predict.dump_state` writes. `lm` is ignored (models are chosen at generate time), as are
# `traces` and `train` (empty for a Predict); `load_state` would set any other key as an attribute.
STATE_KEYS = frozenset({"signature", "demos", "lm", "traces", "train"})
MAX_PROGRAM_BYTES = 50 * MB


def save_compiled(program: TarGEN, path: Path, record: dict[str, Any]) -> None:
    """Write `program`'s instructions and demos (not its models: those are chosen at generate time)."""
    state: dict[str, Any] = {name: {**p.dump_state(), "lm": None} for name, p in program.named_predictors()}
    state[RECORD_KEY] = {"task": program.spec.name, "spec_hash": program.spec.hash, **record}
    state["metadata"] = {"dependency_versions": get_dependency_versions()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(state, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


def load_compiled(spec: TaskSpec, path: Path, options: GenerationOptions | None = None) -> TarGEN:
    """A TarGEN program for `spec` with the compiled instructions and demos of `path`. Optional steps
    switched on by `options` that were not compiled keep their hand-written prompts."""
    try:
        state = json.loads(read_text(path, "--program", SpecError, max_bytes=MAX_PROGRAM_BYTES))
    except OSError as exc:
        raise SpecError(f"cannot read --program {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, RecursionError):
        raise SpecError(
            f"--program {path} is not JSON; give a program.json written by `targen compile`"
        ) from None
    record = state.get(RECORD_KEY) if isinstance(state, dict) else None
    if not isinstance(record, dict) or not record:
        raise SpecError(f"--program {path} was not written by `targen compile`")
    if record.get("spec_hash") != spec.hash:
        raise SpecError(
            f"--program {path} was compiled for task {excerpt(record.get('task'))} with another spec "
            f"(hash {excerpt(record.get('spec_hash'))}, this one {spec.hash}); compile it again for this spec"
        )
    program = TarGEN(spec, options)
    predictors = dict(program.named_predictors())
    unknown = [name for name in state if name not in predictors and name not in (RECORD_KEY, "metadata")]
    if unknown:
        raise SpecError(
            f"--program {path} has predictors {_names(unknown)} that a {spec.name} program does not; "
            "compile it again with `targen compile`"
        )
    for name, predictor in predictors.items():
        if name in state:
            problem = _state_problem(state[name], len(predictor.signature.fields))
            if problem:
                raise SpecError(f"--program {path}: predictor {name!r} {problem}; compile it again")
            # Only the instructions and demos are loaded: DSPy's load_state sets every other key as an
            # attribute, and the models are chosen at generate time.
            predictor.load_state(
                {"signature": state[name]["signature"], "demos": state[name]["demos"], "lm": None}
            )
    return program


def _state_problem(state: Any, n_fields: int) -> str | None:
    """What is wrong with one predictor's saved state (as `Predict.dump_state` writes it), or None."""
    if not isinstance(state, dict):
        return f"is {excerpt(state)}, not an object"
    unknown = sorted(set(state) - STATE_KEYS)
    if unknown:
        return f"has keys {_names(unknown)} besides {sorted(STATE_KEYS)}"
    signature, demos = state.get("signature"), state.get("demos")
    if not isinstance(signature, dict) or not isinstance(signature.get("instructions"), str):
        return "has no signature with text instructions"
    fields = signature.get("fields")
    if not isinstance(fields, list) or len(fields) != n_fields:
        return f"has no signature.fields list of {n_fields} fields"
    if not all(
        isinstance(f, dict) and isinstance(f.get("prefix"), str) and isinstance(f.get("description"), str)
        for f in fields
    ):
        return "has signature fields without text prefix and description"
    if not isinstance(demos, list) or not all(
        isinstance(demo, dict) and all(isinstance(key, str) for key in demo) for demo in demos
    ):
        return "has demos that are not a list of objects"
    if not all(isinstance(state.get(key, []), list) for key in ("traces", "train")):
        return "has traces or train that are not lists"
    return None


def _names(keys: list[str]) -> str:
    """Up to five keys a file gave, each cut short, on one line."""
    shown = ", ".join(excerpt(key, 40) for key in keys[:5])
    return one_line(f"[{shown}{', ...' if len(keys) > 5 else ''}]")
