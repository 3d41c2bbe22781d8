"""Is generated text task-shaped? The check behind the program's rejections (an instance that fails is
asked for again), the compile metric of the contexts and seeds steps, and `experiments/embedded_quality.py`.

Task-shaped means: a context is a setting of a few words; a seed fits its description (a seed copied
into a field has that field's word bounds); every field has its declared word bounds (`min_words`,
`max_words`); no text goes round in a loop, copies the spec's own text (its descriptions, label
meanings, guidelines or examples) or is a bare label name, names one of the task's fields as no
sentence would ("choice2 is the more plausible one"), or joins words without spaces
("the_door_was_closed", "This,included,Zorvath"); and the free-text fields of one instance differ from
each other. It judges shape only, not whether the label is right.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from targen_dspy.signatures.spec import FieldSpec, TaskSpec, label_text

CONTEXT_WORDS = 2  # a context is a setting ("a rural clinic"), not a word ("A", "true")
SEED_WORDS = 2  # a plain seed without bounds of its own is a phrase at least ("1.1.1" is not)
COPY_NGRAM = 3  # a text copies the spec when most of its word trigrams are the spec's
COPY_SHARE = 0.6
COPY_MIN_SHARED = 3  # "The museum is in Porto." shares two trigrams with an example and is no copy
LOOP_MIN_NGRAMS = 8
LOOP_DISTINCT = 0.75  # a text of which fewer than this share of trigrams are distinct loops
SAME_SHARE = 0.8  # two fields whose word sets overlap this much (Jaccard) are the same text
SHORT_WORDS = 3  # texts shorter than this copy the spec only as a label name
_WORD = re.compile(r"\w+")
# Three or more words joined by underscores, commas or semicolons with no space: what a small model
# writes to get round a word limit or a ban on copying. Numbers ("4,000,000") and pairs are not caught.
_GLUED = re.compile(r"[^\W\d_]+(?:[_,;][^\W\d_]+){2,}")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The form two texts are compared in: case, spacing and end punctuation do not make them distinct."""
    return _SPACE.sub(" ", text).strip().strip(".,;:!?\"'").casefold()


def word_count(text: str) -> int:
    """Words as the grammar's word bounds count them: runs of non-space characters."""
    return len(text.split())


def spec_texts(spec: TaskSpec) -> list[str]:
    """The spec's own texts an output must not copy: descriptions, guidelines, label meanings and the
    text fields of its examples."""
    texts = [spec.description, spec.context, spec.seed.description, spec.correction]
    fields = {**spec.fields, **(spec.generate or {}), **(spec.seed.parts or {})}
    texts += [field.description for field in fields.values()]
    texts += [label.means for label in spec.labels] + [spec.label_description or ""]
    texts += [value for example in spec.examples for value in example.values() if isinstance(value, str)]
    return [text for text in texts if text]


def _grams(words: list[str]) -> list[tuple[str, ...]]:
    """The word trigrams of a text, in order (built by zip: this runs for every text the program checks)."""
    return list(zip(*(words[i:] for i in range(COPY_NGRAM)), strict=False))  # shorter tails end it


def _ngrams(words: list[str]) -> set[tuple[str, ...]]:
    return set(_grams(words))


class ShapeCheck:
    """The shape checks for one task; built once (it indexes the spec's texts), then called per text."""

    def __init__(self, spec: TaskSpec):
        self.spec = spec
        texts = [normalise(text) for text in spec_texts(spec)]
        # A short text equal to an example's ("it", "bank") is a fine answer, not a copy.
        self._whole = {text for text in texts if word_count(text) >= SHORT_WORDS}
        self._ngrams = set().union(*(_ngrams(_WORD.findall(text)) for text in texts))
        labels = [normalise(label_text(value)) for value in spec.label_values]
        self._labels = {*labels, *(label.replace("_", " ") for label in labels)}
        # Field names no sentence uses as a word (`choice1`, `span2_text`): a text that has one talks
        # about the task instead of being an instance of it. ("premise" or "question" may be content.)
        names = {*spec.fields, *(spec.generate or {}), *(spec.seed.parts or {})}
        self._field_words = {name.casefold() for name in names if re.search(r"[\d_]", name)}

    def copies_spec(self, text: str) -> bool:
        """The text is one of the spec's texts, or most of its word trigrams are (a label meaning with a
        word changed); a short phrase that merely shares words with the spec ("a news beat") is not."""
        key = normalise(text)
        return self._copies(key, _WORD.findall(key))

    def _copies(self, key: str, words: list[str]) -> bool:
        """`copies_spec` of a text normalised to `key`, whose words are `words`."""
        if key in self._whole:
            return True
        grams = _ngrams(words)
        shared = len(grams & self._ngrams)
        return shared >= COPY_MIN_SHARED and shared >= COPY_SHARE * len(grams)

    def is_label(self, text: str) -> bool:
        return normalise(text) in self._labels

    def text_problems(self, name: str, text: Any, bounds: tuple[int, int | None] | None) -> list[str]:
        """What is wrong with one text called `name` (empty when it is task-shaped)."""
        if not isinstance(text, str) or not text.strip():
            return [f"{name} is empty"]
        problems = []
        if bounds is not None:
            low, high = bounds
            words = word_count(text)
            if words < low or (high is not None and words > high):
                span = f"{low} to {high}" if high is not None else f"at least {low}"
                problems.append(f"{name} has {words} words, not {span}")
        key = normalise(text)  # once per text: every check below compares normalised words
        tokens = _WORD.findall(key)
        if _loops(tokens):
            problems.append(f"{name} repeats itself: {text[:60]!r}")
        if glued := _GLUED.search(text):
            problems.append(f"{name} joins words without spaces: {glued.group()[:40]!r}")
        if named := self._field_words.intersection(tokens):
            problems.append(f"{name} names the task's field {min(named)!r}")
        if key in self._labels:
            problems.append(f"{name} is a label name: {text!r}")
        elif self._copies(key, tokens):
            problems.append(f"{name} copies the task's own text: {text[:60]!r}")
        return problems

    def context(self, text: str, min_words: int = CONTEXT_WORDS) -> list[str]:
        """A context: a setting of at least `min_words` words, not the spec's text. (The program passes 1:
        "Astronomy" is a fine context from a strong model; the embedded model's grammar asks for more.)"""
        return self.text_problems("context", text, (min_words, None))

    def seed(self, seed: str, min_words: int = SEED_WORDS) -> list[str]:
        """A plain seed: the bounds of the field it fills (else at least `min_words` words); a structured
        seed: every part present, within its choices and pattern, and no copy of the spec."""
        parts = self.spec.seed.parts
        if parts is None:
            return self.text_problems("seed", seed, self.spec.seed_word_bounds or (min_words, None))
        try:
            values = json.loads(seed)
        except (json.JSONDecodeError, TypeError):
            return [f"seed is not a JSON object of its parts: {str(seed)[:60]!r}"]
        if not isinstance(values, dict):
            return ["seed is not a JSON object of its parts"]
        problems = []
        for name, part in parts.items():
            problems += self._part_problems(f"seed.{name}", values.get(name), part)
        return problems

    def _part_problems(self, name: str, value: Any, part: FieldSpec) -> list[str]:
        values = value if isinstance(value, list) else [value]
        if not values:
            return [f"{name} is empty"]
        problems = []
        for item in values:
            if part.choices:
                if item not in part.choices:
                    problems.append(f"{name} is not one of {list(part.choices)}")
                continue
            problems += self.text_problems(name, item, part.word_bounds)
            if part.pattern and isinstance(item, str) and not re.fullmatch(part.pattern, item):
                problems.append(f"{name} does not match {part.pattern!r}")
        return problems

    def fields(self, fields: Mapping[str, Any], specs: Mapping[str, FieldSpec]) -> list[str]:
        """Each free-text field within its word bounds, no copy of the spec, no bare label name; and no two
        of them the same text. Fields chosen from a set (`choices`, `one_of`) may repeat another."""
        problems: list[str] = []
        free = {
            name: fields[name]
            for name, spec in specs.items()
            if name in fields and spec.type == "text" and not spec.choices and not spec.one_of
        }
        for name, text in free.items():
            problems += self.text_problems(name, text, specs[name].word_bounds)
        problems += _identical(free)
        return problems

    def instance(self, generated: Mapping[str, Any]) -> list[str]:
        """The instance step's output (the seed's fields included) as the model wrote it."""
        return self.fields(generated, self.spec.generator_fields)

    def record(self, record: Mapping[str, Any]) -> list[str]:
        """A data.jsonl record: its context, its seed and its checked fields."""
        return [
            *self.context(record.get("context", "")),
            *self.seed(record.get("seed", "")),
            *self.fields(record, self.spec.checked_fields),
        ]


def _loops(words: list[str]) -> bool:
    """A text (its normalised `words`) that says the same thing over and over (a small model's loop):
    many repeated trigrams."""
    grams = _grams(words)
    return len(grams) >= LOOP_MIN_NGRAMS and len(set(grams)) < LOOP_DISTINCT * len(grams)


def _identical(texts: Mapping[str, Any]) -> list[str]:
    """Pairs of texts that are the same, or nearly: the same words but for a few (a hypothesis that is
    its premise with two words swapped)."""
    words = {name: set(_WORD.findall(normalise(str(text)))) for name, text in texts.items()}
    names, problems = list(words), []
    for i, name in enumerate(names):
        for other in names[:i]:
            union = words[name] | words[other]
            if union and len(words[name] & words[other]) >= SAME_SHARE * len(union):
                problems.append(f"{name} is the same text as {other}")
                break
    return problems


def passing_share(spec: TaskSpec, records: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """How many of `records` pass the shape check, of how many."""
    check = ShapeCheck(spec)
    results = [not check.record(record) for record in records]
    return sum(results), len(results)
