"""Passages from the user's own documents (`--corpus DIR`), retrieved by BM25 (Robertson et al.).

Every `.txt`, `.md`, `.markdown` and `.rst` file under the directory is cut into passages of whole
paragraphs, about `PASSAGE_WORDS` words each (a longer paragraph is cut into windows of that many
words). The index is in memory: term → (passage, count) postings, built once per run."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from targen_dspy.errors import RunError

SUFFIXES = (".txt", ".md", ".markdown", ".rst")
PASSAGE_WORDS = 120
_WORD = re.compile(r"\w+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Passage:
    source: str  # the file, relative to the corpus directory
    number: int  # its place in the file, from 0
    text: str

    @property
    def id(self) -> str:
        return f"{self.source}#{self.number}"


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def passages_of(text: str, source: str, words: int = PASSAGE_WORDS) -> list[Passage]:
    """Consecutive paragraphs joined while they fit in `words` words; a longer paragraph in windows."""
    chunks: list[str] = []
    current: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        split = paragraph.split()
        if not split:
            continue
        if current and len(current) + len(split) > words:
            chunks.append(" ".join(current))
            current = []
        while len(split) > words:
            chunks.append(" ".join(split[:words]))
            split = split[words:]
        current += split
    if current:
        chunks.append(" ".join(current))
    return [Passage(source, i, chunk) for i, chunk in enumerate(chunks)]


class Corpus:
    """BM25 over passages (k1 = 1.5, b = 0.75)."""

    def __init__(self, passages: list[Passage], k1: float = 1.5, b: float = 0.75):
        self.passages = passages
        self.k1, self.b = k1, b
        self.lengths = [len(tokens(p.text)) for p in passages]
        self.mean_length = sum(self.lengths) / max(len(passages), 1)
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, passage in enumerate(passages):
            for term, count in Counter(tokens(passage.text)).items():
                self.postings[term].append((i, count))

    @classmethod
    def load(cls, directory: Path | str, words: int = PASSAGE_WORDS) -> Corpus:
        """The passages of every text file under `directory`; a one-line RunError if there are none."""
        directory = Path(directory)
        if not directory.exists():
            raise RunError(f"--corpus {directory}: no such directory")
        if not directory.is_dir():
            raise RunError(f"--corpus {directory} is a file; give a directory of .txt or .md files")
        files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            raise RunError(f"--corpus {directory} has no {', '.join(SUFFIXES)} files")
        passages = []
        for file in files:
            try:
                text = file.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise RunError(f"--corpus: cannot read {file}: {exc.strerror}") from None
            passages += passages_of(text, file.relative_to(directory).as_posix(), words)
        if not passages:
            raise RunError(f"--corpus {directory}: its {len(files)} text files are empty")
        return cls(passages)

    def idf(self, term: str) -> float:
        found = len(self.postings.get(term, ()))
        return math.log(1 + (len(self.passages) - found + 0.5) / (found + 0.5))

    def search(self, query: str, k: int = 3) -> list[Passage]:
        """The `k` passages that score highest for `query`; only passages sharing a word with it."""
        scores: Counter = Counter()
        for term in set(tokens(query)):
            idf = self.idf(term)
            for i, count in self.postings.get(term, ()):
                norm = self.k1 * (1 - self.b + self.b * self.lengths[i] / self.mean_length)
                scores[i] += idf * count * (self.k1 + 1) / (count + norm)
        best = sorted(scores, key=lambda i: (-scores[i], i))[:k]
        return [self.passages[i] for i in best]
