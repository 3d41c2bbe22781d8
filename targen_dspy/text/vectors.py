"""Records as unit vectors, and near-duplicates among them.

A record's vector is the mean of its text fields' unit embeddings, made unit again, so that a long field
does not outweigh a short one; the cosine of two records is then the dot product of their vectors. The
embedding function comes from the caller (MiniLM in `analysis.embeddings`, a table in tests): nothing
here loads a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Embed = Callable[[list[str]], np.ndarray]  # texts -> one vector a row
_CHUNK = 256  # records embedded per call when kept records are loaded


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """`vectors` with every row scaled to length 1 (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def record_vectors(records: Sequence[Mapping[str, Any]], fields: Sequence[str], embed: Embed) -> np.ndarray:
    """One unit float32 vector per record: its text `fields` embedded (all in one call), each made unit,
    averaged and made unit again."""
    if not records:
        return np.zeros((0, 0), dtype=np.float32)
    texts = [str(record[name]) for record in records for name in fields]
    embedded = unit_rows(np.asarray(embed(texts), dtype=np.float32))
    return unit_rows(embedded.reshape(len(records), len(fields), -1).sum(axis=1))


@dataclass(frozen=True)
class Duplicate:
    of: str  # id of the kept record it is closest to
    cosine: float


class NearDuplicateFilter:
    """Streaming near-duplicate detection: keeps the first of each group of records whose cosine is at
    least `threshold`. The kept records' vectors are rows of a growing float32 matrix, so checking one
    more is one matrix-vector product (the maximum cosine to the kept ones), O(kept) time and no other
    memory: tens of thousands of records are fine."""

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

    def vectors(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return record_vectors(records, self.fields, self.embed)

    def check(self, record: Mapping[str, Any]) -> Duplicate | None:
        """The kept record `record` nearly duplicates, or None; a new one is kept (added)."""
        vector = self.vectors([record])[0]
        if self.ids:
            cosines = self._matrix[: len(self.ids)] @ vector
            best = int(np.argmax(cosines))
            if cosines[best] >= self.threshold:
                return Duplicate(self.ids[best], round(float(cosines[best]), 4))
        self._add(record["id"], vector)
        return None

    def load(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Keep `records` (a resumed run's, already checked) without checking them again."""
        chunk: list[Mapping[str, Any]] = []
        for record in records:
            chunk.append(record)
            if len(chunk) == _CHUNK:
                self._add_all(chunk)
                chunk = []
        if chunk:
            self._add_all(chunk)

    def _add_all(self, records: list[Mapping[str, Any]]) -> None:
        for record, vector in zip(records, self.vectors(records), strict=True):
            self._add(record["id"], vector)

    def _add(self, id_: str, vector: np.ndarray) -> None:
        if self._matrix is None:
            self._matrix = np.empty((16, len(vector)), dtype=np.float32)
        elif len(self.ids) == len(self._matrix):  # grow by doubling: amortised O(1) per record
            grown = np.empty((2 * len(self._matrix), self._matrix.shape[1]), dtype=np.float32)
            grown[: len(self.ids)] = self._matrix[: len(self.ids)]
            self._matrix = grown
        self._matrix[len(self.ids)] = vector
        self.ids.append(id_)
