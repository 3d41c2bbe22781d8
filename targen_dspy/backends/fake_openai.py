"""A real OpenAI-compatible HTTP server on loopback that answers every TarGEN step with well-formed
JSON, for tests and benchmarks of the litellm path: optional fixed latency and injected faults.

It reads the output field names the adapter asks for and fills each with a distinct, plausible value;
a corrected label echoes the proposed one unless `flip_labels` is set.
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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ASKED_FIELDS = re.compile(r"`(\w+)`")
_PROPOSED = re.compile(r"\[\[ ## proposed_label ## \]\]\n(.+)")
_LITERAL = re.compile(r"corrected_label`.*?Literal\[(.*?)\]")


@dataclass
class FaultPlan:
    """Share of calls that fail, and how (each kind equally likely)."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500", "hang", "garbage")
    hang_seconds: float = 30.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Every call is a new connection: with the default backlog of 5, 64 clients connecting at once are
    # reset, and the benchmark would measure retries.
    request_queue_size = 256


class FakeOpenAI:
    """`with FakeOpenAI(latency=0.2) as server:` then use `server.api_base` with `openai/<any name>`."""

    def __init__(self, latency: float = 0.0, faults: FaultPlan | None = None, flip_labels: bool = False):
        self.latency = latency
        self.faults = faults or FaultPlan()
        self.flip_labels = flip_labels
        self.calls = 0
        self.faults_served = 0
        self._counter = itertools.count()
        self._lock = threading.Lock()
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

    def answer(self, prompt: str) -> dict[str, Any]:
        """The JSON object for the output fields named in the adapter's closing instruction."""
        request_line = prompt.rsplit("Respond with a JSON object", 1)[-1]
        answer: dict[str, Any] = {}
        for name in _ASKED_FIELDS.findall(request_line):
            n = next(self._counter)
            if name in ("contexts", "seeds"):
                answer[name] = [f"{name[:-1]} {n}-{i}: a distinct example text" for i in range(8)]
            elif name == "corrected_label":
                answer[name] = self._label(prompt, request_line)
            elif name == "question":
                answer[name] = "cause" if n % 2 else "effect"
            else:
                answer[name] = f"{name.replace('_', ' ')} number {n}, a complete sentence."
        return answer

    def _label(self, prompt: str, request_line: str) -> Any:
        proposed = _PROPOSED.search(prompt).group(1).strip()
        with contextlib.suppress(ValueError):
            proposed = json.loads(proposed)  # 0, 1, true, false
        if not self.flip_labels:
            return proposed
        options = ast.literal_eval(f"[{_LITERAL.search(request_line).group(1)}]")
        return options[(options.index(proposed) + 1) % len(options)]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with server._lock:
                    server.calls += 1
                    fault = server.faults.rng.random() < server.faults.rate
                    kind = server.faults.rng.choice(server.faults.kinds) if fault else None
                    server.faults_served += fault
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
                prompt = str(body["messages"][-1].get("content", ""))  # the request, not the demos
                content = "{not json at all" if kind == "garbage" else json.dumps(server.answer(prompt))
                self._send(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": len(prompt) // 4,
                            "completion_tokens": len(content) // 4,
                            "total_tokens": (len(prompt) + len(content)) // 4,
                        },
                    },
                )

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def main(argv: list[str] | None = None) -> None:
    """`python -m targen_dspy.backends.fake_openai --latency 0.2`: serve from a process of its own, so its
    CPU is not counted against the client's; prints the API base, serves until stdin is closed."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    args = parser.parse_args(argv)
    with FakeOpenAI(latency=args.latency) as server:
        print(server.api_base, flush=True)
        sys.stdin.read()  # EOF when the parent closes the pipe or dies


if __name__ == "__main__":
    main()
