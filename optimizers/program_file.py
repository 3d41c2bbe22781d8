"""program.json: a compiled program as plain JSON (DSPy's per-predictor state, no pickle), with the
spec hash, models, optimizer settings and scores it was compiled with."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dspy.utils.saving import get_dependency_versions

from targen_dspy.errors import SpecError
from targen_dspy.program import TarGEN
from targen_dspy.program.options import GenerationOptions
from targen_dspy.signatures import TaskSpec

RECORD_KEY = "targen"


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
        state = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read --program {path}: {exc.strerror}") from None
    except json.JSONDecodeError:
        raise SpecError(
            f"--program {path} is not JSON; give a program.json written by `targen compile`"
        ) from None
    record = state.get(RECORD_KEY) if isinstance(state, dict) else None
    if not record:
        raise SpecError(f"--program {path} was not written by `targen compile`")
    if record.get("spec_hash") != spec.hash:
        raise SpecError(
            f"--program {path} was compiled for task {record.get('task')!r} with another spec "
            f"(hash {record.get('spec_hash')}, this one {spec.hash}); compile it again for this spec"
        )
    program = TarGEN(spec, options)
    for name, predictor in program.named_predictors():
        if name in state:
            predictor.load_state(state[name])
    return program
