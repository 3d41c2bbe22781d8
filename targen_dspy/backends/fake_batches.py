"""The OpenAI Files and Batches endpoints of `FakeOpenAI`: upload a JSONL batch file, create a batch over
it, retrieve the batch, download its output and error files. A batch completes `delay` seconds after it
was created (when it is next retrieved), each line answered by the server's own chat completion; a plan
can fail the first items it answers or let the first batches expire, as a provider may.

`submitted` counts, per custom_id, the batches that asked for it: a client that resumes correctly never
submits one twice while a batch holding it is live."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class BatchPlan:
    """How the fake's batches behave (read when a batch is retrieved): seconds until a batch is done,
    which items come back as server errors (every `fail_every`-th answered, over all batches; 1: all), how
    many batches (the first created) expire; and every item whose request's last message contains
    `fail_containing`, if set, fails. A batch whose metadata names a stage in `hold_stages`
    (`targen_stage`, as targen's client sends) stays in progress: a client is then certainly polling it."""

    delay: float = 0.0
    fail_every: int = 0
    fail_containing: str | None = None
    hold_stages: frozenset[str] = frozenset()
    expire_batches: int = 0


class BadRequest(ValueError):
    """A request the real API would refuse with a 400 (or 404 for an unknown id)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class FakeBatches:
    def __init__(self, answer: Callable[[dict[str, Any]], dict[str, Any]], plan: BatchPlan | None = None):
        self.answer, self.plan = answer, plan or BatchPlan()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.submitted: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._answered = self._expired = 0
        self._lock = threading.Lock()

    def upload(self, content_type: str, body: bytes) -> dict[str, Any]:
        """POST /v1/files: a multipart form with `purpose` and `file`."""
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        if not message.is_multipart():
            raise BadRequest("expected a multipart/form-data upload")
        fields = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        if "file" not in fields or fields.get("purpose") is None:
            raise BadRequest("a file upload needs the fields 'file' and 'purpose'")
        content = fields["file"].get_payload(decode=True)
        with self._lock:
            file_id = f"file-{next(self._ids)}"
            self.files[file_id] = content
        return {"id": file_id, "object": "file", "bytes": len(content), "purpose": "batch"}

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/batches over an uploaded file of request lines."""
        content = self.files.get(body.get("input_file_id", ""))
        if content is None:
            raise BadRequest(f"no file {body.get('input_file_id')!r}", 404)
        if body.get("endpoint") != "/v1/chat/completions":
            raise BadRequest("endpoint must be /v1/chat/completions")
        lines = [json.loads(line) for line in content.splitlines() if line.strip()]
        ids = [line.get("custom_id") for line in lines]
        if len(set(ids)) != len(ids) or not all(isinstance(i, str) for i in ids):
            raise BadRequest("every line needs a custom_id of its own")
        with self._lock:
            self.submitted.update(ids)
            batch_id = f"batch_{next(self._ids)}"
            self.batches[batch_id] = batch = {
                "id": batch_id,
                "object": "batch",
                "endpoint": body["endpoint"],
                "input_file_id": body["input_file_id"],
                "completion_window": body.get("completion_window", "24h"),
                "status": "in_progress",
                "created_at": int(time.time()),
                "output_file_id": None,
                "error_file_id": None,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "metadata": body.get("metadata"),
                "_lines": lines,
                "_created": time.monotonic(),
            }
        return _public(batch)

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        """GET /v1/batches/{id}: finished here once due."""
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                raise BadRequest(f"no batch {batch_id!r}", 404)
            # The plan's delay as it is now: a test may hold jobs back, then let them finish.
            held = (batch["metadata"] or {}).get("targen_stage") in self.plan.hold_stages
            due = time.monotonic() >= batch["_created"] + self.plan.delay
            if batch["status"] == "in_progress" and due and not held:
                self._finish(batch)
            return _public(batch)

    def listing(self) -> dict[str, Any]:
        with self._lock:
            return {"object": "list", "data": [_public(batch) for batch in self.batches.values()]}

    def content(self, file_id: str) -> bytes:
        with self._lock:
            if file_id not in self.files:
                raise BadRequest(f"no file {file_id!r}", 404)
            return self.files[file_id]

    def _finish(self, batch: dict[str, Any]) -> None:
        """Answer every line (lock held), or expire the batch with none answered."""
        lines = batch.pop("_lines")
        outputs, errors = [], []
        expire = self._expired < self.plan.expire_batches
        self._expired += expire
        for line in lines:
            row = {"id": f"batch_req_{next(self._ids)}", "custom_id": line["custom_id"]}
            if expire:
                error = {"code": "batch_expired", "message": "This request could not be executed before the "
                         "completion window expired."}  # fmt: skip
                errors.append({**row, "response": None, "error": error})
            elif self._fails(line["body"]):
                body = {"error": {"message": "injected fault", "type": "server_error"}}
                errors.append({**row, "response": {"status_code": 500, "body": body}, "error": None})
            else:
                body = self.answer(line["body"])
                outputs.append({**row, "response": {"status_code": 200, "body": body}, "error": None})
        batch["status"] = "expired" if expire else "completed"
        batch["request_counts"].update(completed=len(outputs), failed=len(errors))
        for key, rows in (("output_file_id", outputs), ("error_file_id", errors)):
            if rows:
                file_id = f"file-{next(self._ids)}"
                self.files[file_id] = "".join(json.dumps(row) + "\n" for row in rows).encode()
                batch[key] = file_id

    def _fails(self, body: dict[str, Any]) -> bool:
        self._answered += 1
        marked = self.plan.fail_containing
        if marked is not None and marked in str(body["messages"][-1].get("content", "")):
            return True
        return bool(self.plan.fail_every) and self._answered % self.plan.fail_every == 0


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in batch.items() if not key.startswith("_")}
