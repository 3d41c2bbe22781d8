"""Code that specs declare by name: `postprocess: targen_dspy.signatures.hooks:NAME` (or just `NAME`) turns
what the model wrote (plus the seed's parts) into the task's fields. Only the hooks in SHIPPED (and those
installed packages register, see `hook_policy`) can be named by a spec that is not trusted.

Computed fields are found in the text, never taken from the model, so they are consistent by
construction; when they cannot be (the word is not there), the hook raises InconsistentInstance and
the slot is retried.
"""

from __future__ import annotations

import re
from typing import Any

from targen_dspy.signatures.spec import InconsistentInstance, LabelValue, Postprocess, Span

# Same word boundary as the generation grammar (`steps.contains_pattern`): no ASCII letter or digit.
_BEFORE, _AFTER = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"
# The seed parts of a ReCoRD seed: the named entities a passage is written around.
ENTITY_PARTS = ("person", "place", "organization")
# The hooks a spec may name; the helpers below them are not hooks.
SHIPPED: dict[str, Postprocess] = {}


def _shipped(function: Postprocess) -> Postprocess:
    SHIPPED[function.__name__] = function
    return function


@_shipped
def place_choices(generated: dict[str, Any], label: LabelValue) -> dict[str, Any]:
    """COPA: put the plausible alternative at index `label` (0 → choice1, 1 → choice2)."""
    right, wrong = generated["plausible_choice"], generated["implausible_choice"]
    first, second = (right, wrong) if label == 0 else (wrong, right)
    return {
        "premise": generated["premise"],
        "question": generated["question"],
        "choice1": first,
        "choice2": second,
    }


@_shipped
def word_offsets(generated: dict[str, Any], label: LabelValue) -> dict[str, Any]:
    """WiC: character offsets of the word in each sentence (`end` exclusive, as in SuperGLUE)."""
    word, first, second = generated["word"], generated["sentence1"], generated["sentence2"]
    if first.strip().casefold() == second.strip().casefold():
        raise InconsistentInstance("sentence1 and sentence2 are the same sentence")
    one, two = find_word(first, word), find_word(second, word)
    return {
        "word": word,
        "sentence1": first,
        "sentence2": second,
        "start1": one.start(),
        "end1": one.end(),
        "start2": two.start(),
        "end2": two.end(),
    }


@_shipped
def pronoun_spans(generated: dict[str, Any], label: LabelValue) -> dict[str, Any]:
    """WSC: the candidate (span1), then the other candidate, then the pronoun (span2), located in that
    order in the text; span texts as the text writes them, indices counted in whitespace tokens."""
    text = generated["text"]
    candidate = find_word(text, generated["span1_text"])
    other = find_word(text, generated["other_candidate"], candidate.end())
    pronoun = find_word(text, generated["span2_text"], other.end())
    return {
        "text": text,
        "span1_index": _token_index(text, candidate),
        "span2_index": _token_index(text, pronoun),
        "span1_text": candidate.group(),
        "span2_text": pronoun.group(),
    }


@_shipped
def cloze_fields(generated: dict[str, Any], label: LabelValue) -> dict[str, Any]:
    """ReCoRD: the seed's names are the entities (the grammar made the passage mention each of them):
    their mentions, as the passage writes them, never overlapping (a longer name wins: "Ana Reyes
    Foundation" is not a mention of "Ana Reyes"), and the answer's mentions as `answers`."""
    passage, query, answer = generated["passage"], generated["query"], generated["answer"]
    if query.count("@placeholder") != 1:
        raise InconsistentInstance("the query must contain @placeholder exactly once")
    names = sorted({generated[part] for part in ENTITY_PARTS}, key=len, reverse=True)
    mention = re.compile(f"{_BEFORE}({'|'.join(map(re.escape, names))}){_AFTER}", re.IGNORECASE)
    spans = [Span(text=m.group(), start=m.start(), end=m.end()) for m in mention.finditer(passage)]
    answers = _unique(span["text"] for span in spans if span["text"].casefold() == answer.casefold())
    if not answers:
        raise InconsistentInstance(f"the answer {answer!r} is only mentioned inside another entity")
    return {
        "passage": passage,
        "query": query,
        "entities": _unique(span["text"] for span in spans),
        "entity_spans": spans,
        "answers": answers,
    }


def find_word(text: str, word: str, start: int = 0) -> re.Match[str]:
    """The first occurrence of `word` in `text` at or after `start`, as a whole word, in any case."""
    match = word_pattern(word).search(text, start)
    if match is None:
        where = f" after {text[:start]!r}" if start else ""
        raise InconsistentInstance(f"{word!r} does not occur as a word in {text!r}{where}")
    return match


def word_pattern(word: str) -> re.Pattern[str]:
    return re.compile(_BEFORE + re.escape(word) + _AFTER, re.IGNORECASE)


def _token_index(text: str, match: re.Match[str]) -> int:
    """Index of the whitespace token where `match` starts (a token may carry punctuation: "(the")."""
    return len(text[: match.end()].split()) - len(match.group().split())


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(items))
