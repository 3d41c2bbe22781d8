"""A real OpenAI-compatible HTTP server on loopback that answers every TarGEN step with well-formed
JSON, for tests and benchmarks of the litellm path: optional fixed latency and injected faults.

It reads the output field names the adapter asks for and fills each with a distinct, plausible value;
a corrected label echoes the proposed one, but is the next label for a share `flip_labels` of the calls
(True: all of them), or always `judge_label` if that is set, or, with `majority_of_demos`, the label the
conversation's demonstrations (its earlier assistant turns) give most often: the majority-label bias of
in-context learning (Zhao et al., 2021), so that a program with demos answers otherwise.
Self-reference's `examples` are `count` copies of the format example, each free text (a value with a
space) replaced by a new sentence.
`garbage_after` makes one step answer in the wrong format: a call asking for that output field gets
garbage once the step has had the given number of good answers (0: from the start). `hold(after=K)`
keeps every request after the K-th waiting, unanswered, until `release()`: a client is then certainly
in the middle of its run (`held` counts the waiting requests), whatever the speed of the machine.

`GET /stats` reports its traffic (`Traffic`): requests so far, when the first came and the last was
answered, and how many were in flight at once. A request with no messages (as some clients send to read
rate-limit headers) gets a 400, as from OpenAI.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import itertools
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from targen_dspy.backends.fake_batches import BadRequest, BatchPlan, FakeBatches
from targen_dspy.text.tokens import count_tokens

_ASKED_FIELDS = re.compile(r"`(\w+)`")
# What a server that ignores the JSON format answers: DSPy's chat-adapter field blocks.
GARBAGE = "[[ ## answer ## ]]\nnot the JSON object that was asked for"
_PROPOSED = re.compile(r"\[\[ ## proposed_label ## \]\]\n(.+)")
_FORMAT_EXAMPLE = re.compile(r"\[\[ ## format_example ## \]\]\n(.+)")
_COUNT = re.compile(r"\[\[ ## count ## \]\]\n(\d+)")
# Words of the sentences that replace free text: distinct sentences, not near-duplicates of each other.
_WORDS = (  # noqa: SIM905 - a paragraph of words reads better than a column of 39 strings
    "river harbour violin glacier bakery senate comet orchard tunnel lantern museum tractor volcano "
    "parrot ledger castle desert copper mirror meadow rocket sermon canyon jacket pepper fossil "
    "airport ballet cactus dentist engine falcon garlic hockey island jungle kettle lemon marathon"
).split()
_LITERAL = re.compile(r"corrected_label`.*?Literal\[(.*?)\]")


@dataclass
class FaultPlan:
    """Share of calls that fail, and how (each kind equally likely)."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500", "hang", "garbage")
    hang_seconds: float = 30.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))


@dataclass
class Traffic:
    """What the server saw: requests (every POST), the wall-clock time (`time.time()`) the first came in and
    the last was answered, and requests in flight now and at most at once."""

    requests: int = 0
    first_request: float | None = None
    last_answer: float | None = None
    in_flight: int = 0
    max_in_flight: int = 0

    def arrived(self) -> None:
        self.requests += 1
        self.first_request = self.first_request or time.time()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def answered(self) -> None:
        self.in_flight -= 1
        self.last_answer = time.time()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Every call is a new connection: with the default backlog of 5, 64 clients connecting at once are
    # reset, and the benchmark would measure retries.
    request_queue_size = 256


class FakeOpenAI:
    """`with FakeOpenAI(latency=0.2) as server:` then use `server.api_base` with `openai/<any name>`."""

    def __init__(
        self,
        latency: float = 0.0,
        faults: FaultPlan | None = None,
        flip_labels: float = False,
        garbage_after: dict[str, int] | None = None,
        judge_label: Any = None,
        usage_tokens: int | None = None,
        majority_of_demos: bool = False,
        batches: BatchPlan | None = None,
        record_bodies: bool = False,
    ):
        self.latency = latency
        self.faults = faults or FaultPlan()
        self.flip_labels = flip_labels
        self.judge_label = judge_label
        self.majority_of_demos = majority_of_demos
        self.usage_tokens = usage_tokens  # tokens every answer reports (default: counted, `count_tokens`)
        self._flips = random.Random(0)
        self.garbage_after = dict(garbage_after or {})  # output field -> good answers before garbage
        self.answered: dict[str, int] = {}  # calls so far, by output field asked for
        self.calls = 0
        self.bodies: list[dict[str, Any]] | None = [] if record_bodies else None  # chat requests, in order
        self.held = 0  # requests waiting for `release()`
        self._hold_after: int | None = None
        self._gate = threading.Event()
        self._gate.set()
        self.faults_served = 0
        self.traffic = Traffic()
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self.batches = FakeBatches(self.completion, batches)  # /v1/files and /v1/batches
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def hold(self, after: int) -> None:
        """Keep the requests after the first `after` (counting from the server's start) unanswered."""
        with self._lock:
            self._hold_after = after
            self._gate.clear()

    def release(self) -> None:
        """Answer the held requests (a client that is gone gets nothing) and hold no more."""
        with self._lock:
            self._hold_after = None
            self._gate.set()

    def answer(self, prompt: str, demos: Sequence[str] = ()) -> dict[str, Any]:
        """The JSON object for the output fields named in the adapter's closing instruction; `demos` are
        the conversation's earlier assistant turns."""
        request_line = _request_line(prompt)
        answer: dict[str, Any] = {}
        for name in _ASKED_FIELDS.findall(request_line):
            n = next(self._counter)
            if name == "contexts":
                answer[name] = [f"context {n}-{i}: a distinct example text" for i in range(8)]
            elif name == "seeds":  # as many words as a premise needs (the catalogue's word bounds)
                answer[name] = [
                    f"seed {n}-{i}: a distinct example text, a sentence of twelve words" for i in range(8)
                ]
            elif name == "corrected_label":
                answer[name] = self._label(prompt, request_line, demos)
            elif name == "question":
                answer[name] = "cause" if n % 2 else "effect"
            elif name == "examples":
                answer[name] = self._examples(prompt, n)
            else:
                answer[name] = f"{name.replace('_', ' ')} number {n}, a complete sentence."
        return answer

    def garbles(self, prompt: str) -> bool:
        """Whether this call gets garbage under `garbage_after` (and counts it)."""
        with self._lock:
            asked = _ASKED_FIELDS.findall(_request_line(prompt))
            for name in asked:
                self.answered[name] = self.answered.get(name, 0) + 1
            return any(
                self.answered[name] > self.garbage_after[name] for name in asked if name in self.garbage_after
            )

    def _examples(self, prompt: str, n: int) -> list[dict[str, Any]]:
        example = json.loads(_FORMAT_EXAMPLE.search(prompt).group(1))
        count = int(_COUNT.search(prompt).group(1))
        free_text = [key for key, value in example.items() if isinstance(value, str) and " " in value]
        return [
            {**example, **{key: _sentence(random.Random(f"{n}-{i}-{key}")) for key in free_text}}
            for i in range(count)
        ]

    def _label(self, prompt: str, request_line: str, demos: Sequence[str]) -> Any:
        shown = Counter()
        for demo in demos if self.majority_of_demos else ():
            with contextlib.suppress(ValueError, KeyError, TypeError):  # a demo of another step
                shown.update([json.loads(demo)["corrected_label"]])
        if shown:
            return shown.most_common(1)[0][0]
        proposed = _PROPOSED.search(prompt).group(1).strip()
        with contextlib.suppress(ValueError):
            proposed = json.loads(proposed)  # 0, 1, true, false
        if self.judge_label is not None:
            return self.judge_label
        with self._lock:
            flip = self._flips.random() < self.flip_labels
        if not flip:
            return proposed
        options = ast.literal_eval(f"[{_LITERAL.search(request_line).group(1)}]")
        return options[(options.index(proposed) + 1) % len(options)]

    def _usage(self, body: dict[str, Any], content: str) -> dict[str, int]:
        """Tokens as a provider bills them: every message of the request, and the answer."""
        if self.usage_tokens is not None:
            prompt_tokens, completion_tokens = self.usage_tokens, 0
        else:
            model = str(body.get("model", ""))
            prompt_tokens = count_tokens("".join(str(m.get("content", "")) for m in body["messages"]), model)
            completion_tokens = count_tokens(content, model)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    def completion(self, body: dict[str, Any], garbage: bool = False) -> dict[str, Any]:
        """The chat completion answering `body` (a request with messages): the answer, or garbage when
        asked to or under `garbage_after`. The batch endpoints answer each line with it too."""
        prompt = str(body["messages"][-1].get("content", ""))  # the request, not the demos
        garbage = garbage or self.garbles(prompt)
        turns = body["messages"][:-1]
        demos = [str(m.get("content", "")) for m in turns if m.get("role") == "assistant"]
        content = GARBAGE if garbage else json.dumps(self.answer(prompt, demos))
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
            ],
            "usage": self._usage(body, content),
        }

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0].rstrip("/")
                if path == "/stats":
                    with server._lock:
                        stats = asdict(server.traffic)
                    self._send(200, stats)
                    return
                batches = server.batches
                if path.startswith("/v1/files/") and path.endswith("/content"):
                    self._batch_api(lambda: batches.content(path.split("/")[3]))
                elif path.startswith("/v1/batches/"):
                    self._batch_api(lambda: batches.retrieve(path.split("/")[3]))
                elif path == "/v1/batches":
                    self._batch_api(batches.listing)
                else:
                    self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = self.path.rstrip("/")
                if path == "/v1/files":
                    content_type = self.headers.get("Content-Type", "")
                    self._batch_api(lambda: server.batches.upload(content_type, body))
                    return
                if path == "/v1/batches":
                    self._batch_api(lambda: server.batches.create(json.loads(body)))
                    return
                with server._lock:
                    server.traffic.arrived()
                    if server.bodies is not None:
                        server.bodies.append(json.loads(body))
                try:
                    self._chat(json.loads(body))
                finally:
                    with server._lock:
                        server.traffic.answered()

            def _batch_api(self, answer) -> None:
                try:
                    result = answer()
                except BadRequest as exc:
                    self._send(exc.status, {"error": {"message": str(exc), "type": "invalid_request_error"}})
                    return
                if isinstance(result, bytes):
                    self._send_bytes(200, result, "application/jsonl")
                else:
                    self._send(200, result)

            def _chat(self, body: dict[str, Any]) -> None:
                if not body.get("messages"):
                    error = {"message": "messages must not be empty", "type": "invalid_request_error"}
                    self._send(400, {"error": error})
                    return
                with server._lock:
                    server.calls += 1
                    fault = server.faults.rng.random() < server.faults.rate
                    kind = server.faults.rng.choice(server.faults.kinds) if fault else None
                    server.faults_served += fault
                    held = server._hold_after is not None and server.calls > server._hold_after
                    server.held += held
                if held:
                    server._gate.wait()
                    with server._lock:
                        server.held -= 1
                if server.latency:
                    time.sleep(server.latency)
                if kind == "hang":
                    time.sleep(server.faults.hang_seconds)
                    return
                if kind in ("429", "500"):
                    self._send(
                        int(kind),
                        {"error": {"message": "injected fault", "type": "server_error"}},
                        {"Retry-After": "0"} if kind == "429" else {},
                    )
                    return
                self._send(200, server.completion(body, garbage=kind == "garbage"))

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                self._send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

            def _send_bytes(self, status: int, data: bytes, kind: str, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client killed mid-call
                    self.end_headers()
                    self.wfile.write(data)

        return Handler


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.sample(_WORDS, 6)).capitalize() + "."


def _request_line(prompt: str) -> str:
    return prompt.rsplit("Respond with a JSON object", 1)[-1]


def main(argv: list[str] | None = None) -> None:
    """`python -m targen_dspy.backends.fake_openai --latency 0.2`: serve from a process of its own, so its
    CPU is not counted against the client's; prints the API base, serves until stdin is closed. Its traffic
    is at `GET /stats` (the API base without `/v1`)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    parser.add_argument("--batch-delay", type=float, default=0.0, help="seconds until a batch job is done")
    args = parser.parse_args(argv)
    with FakeOpenAI(latency=args.latency, batches=BatchPlan(delay=args.batch_delay)) as server:
        print(server.api_base, flush=True)
        sys.stdin.read()  # EOF when the parent closes the pipe or dies


if __name__ == "__main__":
    main()
