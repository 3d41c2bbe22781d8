"""Passages from the user's own documents (`--corpus DIR`), retrieved by BM25 (Robertson et al.).

Every `.txt`, `.md`, `.markdown` and `.rst` file under the directory is cut into passages of whole
paragraphs, about `PASSAGE_WORDS` words each (a longer paragraph is cut into windows of that many
words). The index is in memory: term → (passage, count) postings, built once per run. Files must be
UTF-8 text of at most `MAX_FILE_BYTES` (`MAX_CORPUS_BYTES` in all); links must stay inside the directory."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from targen_dspy.errors import RunError
from targen_dspy.inputs import MB, read_text, size

SUFFIXES = (".txt", ".md", ".markdown", ".rst")
# Caps on what a run reads and indexes in memory. A file over the cap, a binary or non-UTF-8 file, or a
# link out of the directory is an error naming it, never skipped: a silently partial corpus would judge
# instances against less than the user gave.
MAX_FILE_BYTES = 20 * MB
MAX_CORPUS_BYTES = 200 * MB
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
        root = directory.resolve()
        files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
        if not files:
            raise RunError(f"--corpus {directory} has no {', '.join(SUFFIXES)} files")
        passages, total = [], 0
        for file in files:
            # A link is followed only inside the corpus: a link out of it must not make a run read (and
            # send to a model) a file the user did not put there.
            if not file.resolve().is_relative_to(root):
                raise RunError(
                    f"--corpus: {file} links outside {directory}; copy the file into it or remove the link"
                )
            try:
                text = read_text(file, "--corpus file", RunError, max_bytes=MAX_FILE_BYTES)
                total += len(text)
            except OSError as exc:
                raise RunError(f"--corpus: cannot read {file}: {exc.strerror}") from None
            if total > MAX_CORPUS_BYTES:  # the index is in memory
                raise RunError(
                    f"--corpus {directory} holds over {size(MAX_CORPUS_BYTES)} of text; give a smaller corpus"
                )
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
