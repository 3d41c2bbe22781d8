"""The shipped task catalogue (`tasks/*.yaml`), resolution of a task argument to a spec, and the
commented skeleton a user's own task starts from (`skeleton.yaml`)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import yaml

from targen_dspy.errors import SpecError
from targen_dspy.signatures.spec import NAME_PATTERN, TaskSpec, load_spec_file, parse_spec


def catalogue_names() -> list[str]:
    folder = resources.files("targen_dspy.signatures") / "tasks"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_task(name_or_path: str, trust_code: bool = False) -> TaskSpec:
    """A catalogue name (`rte`) or a path to a spec file (`my_task.yaml`); only with `trust_code` may a
    spec file's hook import code that is neither shipped nor registered (see `hook_policy`)."""
    if name_or_path in catalogue_names():
        resource = resources.files("targen_dspy.signatures") / "tasks" / f"{name_or_path}.yaml"
        return parse_spec(yaml.safe_load(resource.read_text(encoding="utf-8")), source=name_or_path)
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        return load_spec_file(path, trust_code)
    raise SpecError(
        f"unknown task {name_or_path!r}: use one of {', '.join(catalogue_names())} or a path to a spec .yaml"
    )


def skeleton(name: str) -> str:
    """The commented spec skeleton, as YAML text, for a task called `name`."""
    if not NAME_PATTERN.match(name):
        raise SpecError(f"task name {name!r} must be lower_snake_case, e.g. ticket_urgency")
    text = (resources.files("targen_dspy.signatures") / "skeleton.yaml").read_text(encoding="utf-8")
    return re.sub(r"^name: .*$", f"name: {name}", text, count=1, flags=re.MULTILINE)
