"""Fixtures of the analysis tests: small hand-made sets whose answers are known (a label decided by an
obvious topic), and the real SuperGLUE splits when they are beside the repository."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

COOKING = [
    f"The {cook} {verb} the {food} in the kitchen."
    for cook in ("chef", "baker", "grandmother")
    for verb in ("fried", "boiled", "seasoned", "baked")
    for food in ("onions", "potatoes", "fish")
]
ASTRONOMY = [
    f"The {who} {verb} {body} through the telescope."
    for who in ("astronomer", "student", "observatory team")
    for verb in ("observed", "photographed", "tracked", "measured")
    for body in ("a distant galaxy", "Jupiter's moons", "a comet")
]


def shared_data(task: str, split: str) -> Path:
    path = SHARED_DATA / task / f"{split}.jsonl"
    if not path.exists():
        pytest.skip(f"real SuperGLUE data not found at {path} (../shared/data beside the repository)")
    return path
