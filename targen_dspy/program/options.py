"""Optional DataGen-style steps a run can switch on (issue 8). Each is off by default, and a step that is
off adds no predictor to the program: hand-written and compiled programs without options are unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# How self-correction's verdict is used: the paper's relabelling, dropping (and remaking) instances the
# corrector judges otherwise, or no self-correction at all.
Correction = Literal["relabel", "filter", "off"]
CORRECTIONS: tuple[Correction, ...] = ("relabel", "filter", "off")


@dataclass(frozen=True)
class GenerationOptions:
    constraints: tuple[str, ...] = ()  # free-text rules added to every generation step (with the spec's own)
    reflect_rounds: int = 0  # self-reflection: critique, and rewrite when flawed, at most this often
    harder: bool = False  # difficulty enhancement: rewrite each instance to be harder, keeping its label
    verify_code: bool = False  # code-based verification: run a model-written solution, relabel or drop
    corpus: Path | None = None  # retrieval-grounded validation against the user's own documents
    correction: Correction = "relabel"
