"""Group checking (DataGen, Huang et al. 2024): streaming semantic near-duplicate removal over a whole run.

An instance's vector is the mean of its text fields' unit embeddings, made unit again (as in `targen
analyze`). The kept instances' vectors are rows of a growing float32 matrix, so checking one more
instance is one matrix-vector product, O(kept) time and no other memory: tens of thousands of
instances are fine. The engine gets the embedding function from its caller and imports no model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from targen_dspy.signatures import TaskSpec

Embed = Callable[[list[str]], np.ndarray]
_CHUNK = 256  # records embedded per call when a resumed run's kept records are loaded


@dataclass(frozen=True)
class Duplicate:
    of: str  # id of the kept instance it is closest to
    cosine: float


class NearDuplicateFilter:
    """Keeps the first of each group of instances whose cosine is at least `threshold`."""

    def __init__(self, embed: Embed, threshold: float, fields: Sequence[str]):
        if not 0 < threshold <= 1:
            raise ValueError(f"a near-duplicate threshold is a cosine in (0, 1], got {threshold}")
        if not fields:
            raise ValueError("near-duplicate removal needs at least one text field")
        self.embed, self.threshold, self.fields = embed, threshold, list(fields)
        self.ids: list[str] = []
        self._matrix: np.ndarray | None = None  # capacity rows; the first len(ids) are in use

    def __len__(self) -> int:
        return len(self.ids)

    def vectors(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        """One unit vector per record: its text fields embedded in one call, averaged, normalised."""
        texts = [str(record[name]) for record in records for name in self.fields]
        embedded = np.asarray(self.embed(texts), dtype=np.float32)
        embedded = _unit(embedded).reshape(len(records), len(self.fields), -1)
        return _unit(embedded.sum(axis=1))

    def check(self, record: dict[str, Any]) -> Duplicate | None:
        """The kept instance `record` nearly duplicates, or None; a new one is kept (added)."""
        vector = self.vectors([record])[0]
        if self.ids:
            cosines = self._matrix[: len(self.ids)] @ vector
            best = int(np.argmax(cosines))
            if cosines[best] >= self.threshold:
                return Duplicate(self.ids[best], round(float(cosines[best]), 4))
        self._add(record["id"], vector[None, :])
        return None

    def load(self, records: Iterable[dict[str, Any]]) -> None:
        """Keep `records` (a resumed run's instances, already checked) without checking them again."""
        chunk: list[dict[str, Any]] = []
        for record in records:
            chunk.append(record)
            if len(chunk) == _CHUNK:
                self._add_all(chunk)
                chunk = []
        if chunk:
            self._add_all(chunk)

    def _add_all(self, records: list[dict[str, Any]]) -> None:
        vectors = self.vectors(records)
        for record, vector in zip(records, vectors, strict=True):
            self._add(record["id"], vector[None, :])

    def _add(self, id_: str, row: np.ndarray) -> None:
        if self._matrix is None:
            self._matrix = np.empty((16, row.shape[1]), dtype=np.float32)
        elif len(self.ids) == len(self._matrix):  # grow by doubling: amortised O(1) per instance
            grown = np.empty((2 * len(self._matrix), self._matrix.shape[1]), dtype=np.float32)
            grown[: len(self.ids)] = self._matrix[: len(self.ids)]
            self._matrix = grown
        self._matrix[len(self.ids)] = row[0]
        self.ids.append(id_)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def text_fields(spec: TaskSpec) -> list[str]:
    """The fields whose text is compared: free-text fields (not choices, not numbers or lists)."""
    return [name for name, field in spec.fields.items() if field.type == "text" and field.choices is None]
