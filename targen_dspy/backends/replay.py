"""Record and replay of a model's calls, for batch runs: the program runs as it does online, and each call
is answered from the batch results fetched so far, or recorded for the next batch.

`BatchEngine` is a DSPy 3.4 engine (`complete(Request) -> Response`, as `backends.local.LlamaCppEngine`)
that hands each request to DSPy's own native OpenAI route, with the HTTP transport replaced by
`ReplayTransport`: the request body is the one an online run sends, byte for byte (the engine declares
the online LM's capabilities, so the adapters ask for the same structured output), and a fetched answer
is parsed by the same provider code and adapters as an online answer. A body with no answer yet raises
`Deferred`, carrying it; the batch scheduler puts it in the next batch."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import dspy
from dspy._vendor.lm15.transports._types import TransportRequest, TransportResponse
from dspy.clients.backend_selection import select_backend
from dspy.clients.engines.lm15_engine import LM15Engine
from dspy.lm15 import Request, Response, RouterConfig

from targen_dspy.backends.remote import PLACEHOLDER_KEY
from targen_dspy.errors import ModelError

BATCH_PROVIDER = "openai-chat"  # DSPy's route for `openai/NAME`: the provider whose batch API is used
MAX_SUBMISSIONS = 3  # a request whose batches failed or expired this often is answered with its last error
CLIENT_SETTINGS = ("api_key", "api_base", "base_url", "timeout")  # owned by the engine, not the LM


def request_id(body: bytes) -> str:
    """A request's custom_id: the hash of its body (model, messages and every sampling parameter,
    sampling seed included), so that one request is one id in this run and any rerun of it."""
    return hashlib.sha256(body).hexdigest()[:40]


@dataclass(frozen=True)
class PendingRequest:
    custom_id: str
    body: bytes

    def line(self) -> dict[str, Any]:
        """The request as a line of an OpenAI batch input file."""
        return {"custom_id": self.custom_id, "method": "POST", "url": "/v1/chat/completions",
                "body": json.loads(self.body)}  # fmt: skip


class Deferred(BaseException):  # noqa: N818 - a request for a later round, not a failure
    """A call whose answer is not in yet. A BaseException, like KeyboardInterrupt, so that it passes
    through every `except Exception` on its way (DSPy's adapters, the engine's retries, a slot's failure
    handling) and reaches the batch scheduler with the program's state untouched."""

    def __init__(self, request: PendingRequest):
        super().__init__(request.custom_id)
        self.request = request


class Answers:
    """The batch results of a run by custom_id: a response body, or the errors of failed submissions."""

    def __init__(self) -> None:
        self._ok: dict[str, bytes] = {}
        self._errors: dict[str, tuple[int, bytes]] = {}
        self.failures: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, custom_id: str, status: int, body: Any) -> None:
        """One result line: status 200 and a chat completion, or an error (a status and its body)."""
        data = json.dumps(body).encode()
        with self._lock:
            if status == 200:
                self._ok[custom_id] = data
            elif custom_id not in self._ok:
                self._errors[custom_id] = (status, data)
                self.failures[custom_id] += 1

    def answer(self, custom_id: str) -> tuple[int, bytes] | None:
        """The response to give, or None while the request should be (re)submitted."""
        with self._lock:
            if custom_id in self._ok:
                return 200, self._ok[custom_id]
            if self.failures[custom_id] >= MAX_SUBMISSIONS:
                return self._errors[custom_id]
            return None


class ReplayTransport:
    """An lm15 transport that answers from `Answers` and defers the rest; it never opens a socket."""

    def __init__(self, answers: Answers):
        self.answers = answers

    def stream(self, request: TransportRequest) -> TransportResponse:
        if not request.url.endswith("/chat/completions"):
            raise ModelError(f"--batch sends chat completions only, not {request.url.rsplit('/', 1)[-1]}")
        custom_id = request_id(request.body)
        answered = self.answers.answer(custom_id)
        if answered is None:
            raise Deferred(PendingRequest(custom_id, request.body))
        status, body = answered
        return TransportResponse(
            status=status,
            reason="OK" if status == 200 else "Error",
            http_version="HTTP/1.1",
            headers=[("content-type", "application/json")],
            chunks=iter([body]),
            release=lambda consumed: None,
        )

    def copy(self) -> ReplayTransport:
        return self

    def close(self) -> None:
        pass


class BatchEngine:
    """DSPy's native OpenAI route over `ReplayTransport`, declaring `online`'s capabilities."""

    def __init__(self, online: dspy.LM, answers: Answers):
        route = select_backend(online)
        if not route.native or route.resolution is None or route.resolution.provider != BATCH_PROVIDER:
            raise ModelError(
                f"--batch uses the OpenAI batch API: use --model openai/NAME (with --api-base for a server "
                f"of one's own that has it), not {online.model}"
            )
        self.supports_response_schema = online.supports_response_schema
        self.supports_function_calling = online.supports_function_calling
        self.supports_reasoning = online.supports_reasoning
        self.supported_params = frozenset(online.supported_params)
        config = RouterConfig(api_keys={BATCH_PROVIDER: PLACEHOLDER_KEY}, transport=ReplayTransport(answers))
        self._engine = LM15Engine(config, model_type="chat")

    def complete(self, request: Request) -> Response:
        return self._engine.complete(request)

    def close(self) -> None:
        self._engine.close()

    def dump_state(self) -> dict[str, Any]:
        """Nothing to save: DSPy asks when a program is hashed or saved; its answers live in the run."""
        return {}

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> BatchEngine:
        raise ModelError("a batch run's models are not saved with a program: load it and pass --batch again")


def batch_lm(online: dspy.LM, answers: Answers) -> dspy.LM:
    """A copy of `online` (model, sampling settings, cache) whose calls are answered from `answers`."""
    settings = {key: value for key, value in online.kwargs.items() if key not in CLIENT_SETTINGS}
    return dspy.LM(
        online.model, engine=BatchEngine(online, answers), cache=online.cache, num_retries=0, **settings
    )
