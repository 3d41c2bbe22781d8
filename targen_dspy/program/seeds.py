"""Step 2: instance seeds per context: the raw material instances are built around (not exemplars).

A plain seed is a text. A structured seed (a word and two of its senses, a pair of subjects) is written
as an object, checked, and kept as canonical JSON text, so that the engine stores, deduplicates and
plans it like any other seed. A seed that breaks the word bounds of the field it fills, copies the
spec's own text or is a bare label name is dropped (`check_shape`, on; off only to measure it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import dspy

from targen_dspy.program.distinct import collect_distinct
from targen_dspy.signatures import TaskSpec
from targen_dspy.signatures.steps import TEXT_CHAR, at_most, seed_signature, with_options
from targen_dspy.text.shape import ShapeCheck

_SPACE = re.compile(r"\s+")
_WRITABLE = re.compile(f"{TEXT_CHAR}+")


class UnusableSeed(ValueError):
    """A structured seed no instance can be built on; the seed step drops it."""


class SeedGenerator(dspy.Module):
    def __init__(self, spec: TaskSpec, max_rounds: int = 3, constraints: Sequence[str] = ()):
        super().__init__()
        self.spec = spec
        self.max_rounds = max_rounds
        self.constraints = tuple(constraints)
        self.write = dspy.Predict(seed_signature(spec))
        self.check_shape = True
        self._shape = ShapeCheck(spec)

    def forward(
        self, setting: str, count: int, known: Sequence[str] = (), sampling_seed: int = 0
    ) -> dspy.Prediction:
        """`count` new distinct seeds set in `setting`, none in `known` (fewer if the model runs dry)."""
        seeds = collect_distinct(
            self._write,
            "seeds",
            count,
            self.max_rounds,
            known,
            sampling_seed,
            usable=self._task_shaped,
            task_description=self.spec.description,
            seed_kind=self.spec.seed.description,
            setting=setting,
        )
        return dspy.Prediction(seeds=seeds)

    def _task_shaped(self, seed: str) -> bool:
        return not (self.check_shape and self._shape.seed(seed, min_words=1))

    def _write(self, count: int, **inputs: Any) -> dspy.Prediction:
        """One answer of at most `count` seeds, each as the text the engine stores: a structured seed
        checked (unusable ones dropped) and as canonical JSON."""
        signature, extra = with_options(at_most(self.write.signature, "seeds", count), self.constraints)
        written = self.write(signature=signature, count=count, **inputs, **extra)
        if self.spec.seed.parts is None:
            return written
        seeds = []
        for item in written.seeds:
            try:
                seeds.append(self.spec.seed_text(self._usable(item.model_dump())))
            except UnusableSeed:
                continue  # the other seeds of the answer are still good
        return dspy.Prediction(seeds=seeds)

    def _usable(self, parts: dict[str, Any]) -> dict[str, Any]:
        """A structured seed's parts with spacing normalised; raises UnusableSeed for one with an empty
        part, one that breaks a part's choices or pattern (a model may ignore the schema), or one whose
        parts cannot be written into the fields that must contain them."""
        parts = {
            name: _SPACE.sub(" ", value).strip() if isinstance(value, str) else value
            for name, value in parts.items()
        }
        for name, part in (self.spec.seed.parts or {}).items():
            value = parts[name]
            if not value:
                raise UnusableSeed(f"{name} is empty")
            if part.choices and value not in part.choices:
                raise UnusableSeed(f"{name} is not one of {part.choices}")
            if part.pattern and not re.fullmatch(part.pattern, value):
                raise UnusableSeed(f"{name} does not match {part.pattern!r}")
        fields = self.spec.written_fields.values()
        for name in {ref for field in fields if field.contains for ref in field.references()}:
            if not _WRITABLE.fullmatch(parts[name]):
                raise UnusableSeed(f"{name} has characters a field that must contain it cannot hold")
        return parts
