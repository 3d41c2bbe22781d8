"""Opening a run directory for review: its manifest, and the spec it was made from."""

from __future__ import annotations

from pathlib import Path

from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.errors import RunError
from targen_dspy.review.server import ReviewApp
from targen_dspy.signatures import TaskSpec, catalogue_names, load_task


def run_spec(manifest: dict, task: str | None, trust_code: bool, run: Path) -> TaskSpec:
    """The spec named by `task`, else the manifest's catalogue task; it must be the one the run used."""
    spec = find_run_spec(manifest, task, trust_code)
    if spec is None:
        raise RunError(f"{run} was not made from a catalogue task; pass --task with its spec .yaml")
    if manifest.get("spec_hash") not in (None, spec.hash):
        raise RunError(
            f"{run} was made from another version of {spec.name}; pass --task with the spec it used"
        )
    return spec


def find_run_spec(manifest: dict, task: str | None, trust_code: bool) -> TaskSpec | None:
    """The spec named by `task`, else the manifest's task if it is in the catalogue, else None."""
    name = task or manifest.get("task")
    if not isinstance(name, str) or (task is None and name not in catalogue_names()):
        return None
    return load_task(name, trust_code)


def open_review(run: Path, task: str | None, trust_code: bool, share: float, seed: int) -> ReviewApp:
    """The review of `run`: a one-line RunError if it is not a run directory with data."""
    run_dir = RunDirectory(run)
    if not run_dir.data.is_file():
        raise RunError(f"{run} has no data.jsonl; give a run directory made by `targen generate`")
    if not 0 < share <= 1:
        raise RunError(f"--sample is a share in (0, 1], got {share}")
    manifest = run_dir.read_json(run_dir.manifest) or {}
    return ReviewApp(run, run_spec(manifest, task, trust_code, run), manifest, share, seed)
