"""The OpenAI Batch API over HTTP: upload a JSONL file of requests, create a batch over it, poll it,
download its output and error files. The same file format is what vLLM's offline `run_batch` reads.

httpx directly (installed with DSPy), not litellm's create_file / create_batch / retrieve_batch /
file_content: importing litellm costs seconds of client CPU that a run otherwise never pays (see
DEVELOPERS.md, Client CPU), and five endpoints are a few lines each."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from targen_dspy.errors import ModelError, redact

logger = logging.getLogger(__name__)
ENDPOINT = "/v1/chat/completions"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass(frozen=True)
class BatchState:
    """A batch as the provider last reported it."""

    id: str
    status: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


class TransientBatchError(Exception):
    """The provider could not be reached or answered 429/5xx: ask again at the next poll."""


class OpenAIBatches:
    """The files and batches endpoints under `api_base` (`https://api.openai.com/v1` or a server of one's
    own), with `api_key`. No I/O until a method is called."""

    def __init__(self, api_base: str, api_key: str, timeout: float = 120.0):
        self.api_base = api_base.rstrip("/")
        self._client = httpx.Client(
            base_url=self.api_base + "/", headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout
        )

    def upload(self, lines: list[dict[str, Any]]) -> str:
        """A batch input file of `lines` (custom_id, method, url, body); its file id."""
        data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
        files = {"file": ("targen-batch.jsonl", data, "application/jsonl")}
        return self._request("POST", "files", data={"purpose": "batch"}, files=files).json()["id"]

    def create(self, input_file_id: str, metadata: dict[str, str]) -> BatchState:
        body = {"input_file_id": input_file_id, "endpoint": ENDPOINT, "completion_window": "24h",
                "metadata": metadata}  # fmt: skip
        return _state(self._request("POST", "batches", json=body).json())

    def retrieve(self, batch_id: str) -> BatchState:
        return _state(self._request("GET", f"batches/{batch_id}").json())

    def created_from(self, input_file_id: str) -> BatchState | None:
        """The batch made from `input_file_id`, if one was (a process killed between creating a batch
        and writing its id down); None if none is listed."""
        listed = self._request("GET", "batches", params={"limit": 100}).json().get("data") or []
        found = [batch for batch in listed if batch.get("input_file_id") == input_file_id]
        return _state(found[0]) if found else None

    def results(self, state: BatchState) -> Iterator[dict[str, Any]]:
        """The lines of a finished batch's output file, then of its error file."""
        for file_id in (state.output_file_id, state.error_file_id):
            if file_id:
                for line in self._request("GET", f"files/{file_id}/content").text.splitlines():
                    if line.strip():
                        yield json.loads(line)

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TransientBatchError(f"cannot reach {self.api_base}: {exc}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientBatchError(f"{self.api_base}/{path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise ModelError(
                redact(
                    f"the batch API at {self.api_base} refused {method} /{path} ({response.status_code}: "
                    f"{message}); check --model, --api-base and the key"
                )  # fmt: skip
            )
        return response


def _state(batch: dict[str, Any]) -> BatchState:
    counts = batch.get("request_counts") or {}
    return BatchState(
        id=batch["id"],
        status=batch["status"],
        output_file_id=batch.get("output_file_id"),
        error_file_id=batch.get("error_file_id"),
        counts={key: value for key, value in counts.items() if isinstance(value, int)},
    )
