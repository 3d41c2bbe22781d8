"""The review page's HTTP server: standard library only, on 127.0.0.1, serving the page's own files and
a small JSON API over the run's index and review.jsonl.

Everything in the run directory is untrusted: the page puts it in the document as text only, the API
caps what a request may ask for and checks every answer against the spec and the run, and only the
page's own files and the analysis plots (by the names in that folder) are served. The Host header must
name this server, so that a web page elsewhere cannot reach it through a rebound DNS name, and answers
must be sent as JSON, which a cross-site form cannot do.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import stat
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from targen_dspy.review.agreement import agreement
from targen_dspy.review.answers import ReviewLog, answer_record
from targen_dspy.review.index import SOURCES, Filter, RunIndex
from targen_dspy.review.sample import stratified_sample
from targen_dspy.signatures import TaskSpec

logger = logging.getLogger(__name__)
ANALYSIS = "data-analysis"  # where `targen analyze RUN/data.jsonl` writes its report and plots
MAX_BODY = 4096  # bytes of an answer
MAX_PAGE = 100  # instances per request
MAX_PLOT = 20_000_000  # bytes
MAX_TEXT = 1000  # characters of a search, or of an open label typed by the reviewer
_PLOT_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}\.png")
_PAGE_FILES = {  # URL path -> (file in static/, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/review.js": ("review.js", "text/javascript; charset=utf-8"),
    "/static/review.css": ("review.css", "text/css; charset=utf-8"),
}
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class BadRequest(ValueError):
    """A request the API refuses; its message goes back to the page."""


class ReviewApp:
    """The run being reviewed: its index, its sample and its review log."""

    def __init__(self, run: Path, spec: TaskSpec, manifest: dict[str, Any], share: float, seed: int):
        self.run = run
        self.spec = spec
        self.manifest = manifest
        self.share = share
        self.seed = seed
        self.index = RunIndex(run, spec.label_field)
        self.log = ReviewLog(run)
        self._lock = threading.Lock()
        self._sample: tuple[int, list[str]] = (-1, [])

    def sample(self) -> list[str]:
        """The ids to review, drawn again only when the run has grown."""
        self.index.refresh()
        data = self.index.entries["data"]
        if self._sample[0] != len(data):
            self._sample = (len(data), stratified_sample(data, self.share, self.seed))
        return self._sample[1]

    def run_facts(self) -> dict[str, Any]:
        self.index.refresh()
        spec = self.spec
        if spec.open_label:
            labels = {"open": spec.label_type, "description": spec.label_description}
        else:
            labels = {
                "values": [
                    {"value": value, "key": json.dumps(value), "means": spec.meaning(value)}
                    for value in spec.label_values
                ]
            }
        return {
            "task": spec.name,
            "description": spec.description,
            "fields": list(spec.fields),
            "label_field": spec.label_field,
            "labels": labels,
            "run": str(self.run),
            "method": self.manifest.get("method", "targen"),
            "models": self.manifest.get("models"),
            "options": self.manifest.get("options"),
            "counts": self.index.counts(),
            "plots": plot_names(self.run / ANALYSIS),
            "share": self.share,
        }

    def instances(self, query: dict[str, str]) -> dict[str, Any]:
        self.index.refresh()
        source = query.get("source", "data")
        if source not in SOURCES:
            raise BadRequest(f"source must be one of {', '.join(SOURCES)}")
        relabeled = query.get("relabeled", "")
        if relabeled not in ("", "yes", "no"):
            raise BadRequest("relabeled must be yes, no or empty")
        text = query.get("q", "")
        if len(text) > MAX_TEXT:
            raise BadRequest(f"the search is longer than {MAX_TEXT} characters")
        where = Filter(
            source, query.get("label") or None, relabeled == "yes" if relabeled else None, text.strip()
        )
        start, count = _page(query)
        total, records = self.index.search(where, start, count)
        return {"total": total, "start": start, "items": records}

    def review(self, query: dict[str, str]) -> dict[str, Any]:
        sample = self.sample()
        status = query.get("status", "pending")
        if status not in ("pending", "answered"):
            raise BadRequest("status must be pending or answered")
        answers = self.log.answers
        ids = [i for i in sample if (i in answers) == (status == "answered")]
        if status == "answered":  # the latest answer first
            ids.sort(key=lambda i: answers[i].get("at", 0), reverse=True)
        start, count = _page(query)
        items = [
            {"record": self.index.record(self.index.by_id[i]), "answer": answers.get(i)}
            for i in ids[start : start + count]
        ]
        return {
            "sample": len(sample),
            "answered": sum(i in answers for i in sample),
            "total": len(ids),
            "start": start,
            "items": items,
            "agreement": agreement(answers.values()).as_json(),
        }

    def answer(self, body: Any) -> dict[str, Any]:
        """Check an answer and append it to review.jsonl: `{"id": ..., "label": ...}` or
        `{"id": ..., "not_instance": true}`."""
        if not isinstance(body, dict) or set(body) - {"id", "label", "not_instance"}:
            raise BadRequest('an answer is {"id": ..., "label": ...} or {"id": ..., "not_instance": true}')
        self.index.refresh()
        entry = self.index.by_id.get(body.get("id")) if isinstance(body.get("id"), str) else None
        if entry is None or not entry.label:
            raise BadRequest("no instance of data.jsonl has that id")
        not_instance = body.get("not_instance", False)
        if not isinstance(not_instance, bool) or not_instance == ("label" in body):
            raise BadRequest('give either a label or "not_instance": true')
        label = None if not_instance else self._label(body["label"])
        with self._lock:
            self.log.add(answer_record(entry, label, not_instance))
            answers = list(self.log.answers.values())
        return {"answered": len(answers), "agreement": agreement(answers).as_json()}

    def _label(self, value: Any) -> Any:
        spec = self.spec
        if not spec.open_label:
            for allowed in spec.label_values:
                if json.dumps(value) == json.dumps(allowed):
                    return allowed
            raise BadRequest(
                f"the label must be one of {', '.join(json.dumps(v) for v in spec.label_values)}"
            )
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
            raise BadRequest(f"type the {spec.label_field} ({spec.label_type})")
        text = value.strip()
        try:
            if spec.label_type == "integer":
                return int(text)
            if spec.label_type == "number":
                number = float(text)
                if not math.isfinite(number):
                    raise ValueError
                return int(number) if number.is_integer() else number
        except ValueError:
            raise BadRequest(f"the {spec.label_field} is a {spec.label_type}; got {text[:40]!r}") from None
        return text

    def close(self) -> None:
        self.log.close()


def plot_names(folder: Path) -> list[str]:
    """The PNG files directly in `folder` (regular files, not links), by name."""
    try:
        found = [
            item.name
            for item in os.scandir(folder)
            if _PLOT_NAME.fullmatch(item.name) and item.is_file(follow_symlinks=False)
        ]
    except OSError:
        return []
    return sorted(found)


def _page(query: dict[str, str]) -> tuple[int, int]:
    try:
        start, count = int(query.get("start", "0")), int(query.get("count", "25"))
    except ValueError:
        raise BadRequest("start and count are whole numbers") from None
    if start < 0 or not 0 < count <= MAX_PAGE:
        raise BadRequest(f"start must be 0 or more and count 1 to {MAX_PAGE}")
    return start, count


def make_server(app: ReviewApp, port: int = 0) -> ThreadingHTTPServer:
    """A server for `app` on 127.0.0.1 (`port` 0: a free port; see `server.server_address`)."""

    api = {
        "/api/run": lambda _query: app.run_facts(),
        "/api/instances": app.instances,
        "/api/review": app.review,
    }

    class Handler(BaseHTTPRequestHandler):
        server_version = "targen-review"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            logger.info("%s " + format, self.address_string(), *args)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._handle(self._get)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self._handle(self._post)

        def _handle(self, method: Any) -> None:
            port = self.server.server_address[1]
            if self.headers.get("Host") not in (f"127.0.0.1:{port}", f"localhost:{port}"):
                self._json(HTTPStatus.FORBIDDEN, {"error": "open the page at the address targen printed"})
                return
            try:
                method(urlsplit(self.path))
            except BadRequest as exc:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            except LookupError as exc:
                self._json(HTTPStatus.CONFLICT, {"error": f"{exc}; reload the page"})
            except Exception:  # a bug or a vanished file: the page says so, the server goes on
                logger.exception("review request %s failed", self.path)
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "the server failed; see its log"})

        def _get(self, url: Any) -> None:
            if url.path in _PAGE_FILES:
                name, content_type = _PAGE_FILES[url.path]
                body = (resources.files("targen_dspy.review") / "static" / name).read_bytes()
                self._send(HTTPStatus.OK, body, content_type)
            elif url.path == "/favicon.ico":  # none: say so without an error in the browser's console
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            elif url.path.startswith("/plots/"):
                self._plot(url.path.removeprefix("/plots/"))
            elif url.path in api:
                query = {key: values[-1] for key, values in parse_qs(url.query, max_num_fields=20).items()}
                self._json(HTTPStatus.OK, api[url.path](query))
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "no such page"})

        def _post(self, url: Any) -> None:
            if url.path != "/api/answer":
                self._json(HTTPStatus.NOT_FOUND, {"error": "no such page"})
                return
            if self.headers.get_content_type() != "application/json":
                self._json(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send the answer as application/json"}
                )
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self.close_connection = True  # the body, if any, is not read
                self._json(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"an answer is {MAX_BODY} bytes at most"}
                )
                return
            try:
                body = json.loads(self.rfile.read(length))
            except (ValueError, RecursionError):
                raise BadRequest("the answer is not JSON") from None
            self._json(HTTPStatus.OK, app.answer(body))

        def _plot(self, name: str) -> None:
            folder = app.run / ANALYSIS
            if name not in plot_names(folder):
                self._json(HTTPStatus.NOT_FOUND, {"error": "no such plot"})
                return
            try:
                with open(folder / name, "rb", opener=_no_follow) as file:
                    if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                        raise OSError
                    body = file.read(MAX_PLOT + 1)
            except OSError:
                body = b""
            if not body or len(body) > MAX_PLOT:
                self._json(HTTPStatus.NOT_FOUND, {"error": "no such plot"})
                return
            self._send(HTTPStatus.OK, body, "image/png")

        def _json(self, status: HTTPStatus, value: Any) -> None:
            body = json.dumps(value, ensure_ascii=True).encode()  # ASCII: no U+2028 surprises in scripts
            self._send(status, body, "application/json")

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in _HEADERS.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)
