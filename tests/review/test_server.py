"""The review API over real HTTP: what it serves, what it refuses, and that answers are kept."""

import http.client
import json
import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from targen_dspy.cli import main
from targen_dspy.review.answers import read_answers
from tests.review.conftest import serving


def request(url, method, path, body=None, headers=None):
    """(status, parsed JSON or raw bytes) of one request, sent as written: no path normalisation."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    sent = {"Host": parts.netloc, **(headers or {})}
    if isinstance(body, (dict, list)):
        body, sent = json.dumps(body), {"Content-Type": "application/json", **sent}
    connection.request(method, path, body=body, headers=sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    is_json = response.getheader("Content-Type") == "application/json"
    return response.status, json.loads(data) if is_json else data


def test_answers_are_checked_kept_and_resumed(run):
    with serving(run) as url:
        status, review = request(url, "GET", "/api/review?status=pending&count=100")
        assert status == 200 and review["answered"] == 0 and review["total"] == review["sample"]
        first, second = (item["record"] for item in review["items"][:2])
        assert request(url, "POST", "/api/answer", {"id": first["id"], "label": "high"})[0] == 200
        status, after = request(url, "POST", "/api/answer", {"id": second["id"], "not_instance": True})
        assert status == 200 and after["answered"] == 2 and after["agreement"]["not_instance"] == 1
    # a new server on the same run: the same sample, the answered ones no longer pending
    with serving(run) as url:
        again = request(url, "GET", "/api/review?status=pending&count=100")[1]
        answered = request(url, "GET", "/api/review?status=answered")[1]
    assert [item["record"]["id"] for item in again["items"]] == [
        item["record"]["id"] for item in review["items"][2:]
    ]
    assert [item["answer"]["id"] for item in answered["items"]] == [second["id"], first["id"]]
    kept = read_answers(run)
    assert kept[first["id"]]["label"] == "high" and kept[first["id"]]["final_label"] == first["label"]
    assert kept[second["id"]]["not_instance"] is True and kept[second["id"]]["label"] is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"id": "no-such-id", "label": "low"}, "no instance of data.jsonl has that id"),
        ({"id": None, "label": "low"}, "has that id"),
        ({"label": "urgent"}, "has that id"),
        ({"id": "ID", "label": "urgent"}, 'the label must be one of "low", "normal", "high", "critical"'),
        ({"id": "ID", "label": ["low"]}, "the label must be one of"),
        ({"id": "ID"}, 'give either a label or "not_instance": true'),
        ({"id": "ID", "label": "low", "not_instance": True}, "give either a label"),
        ({"id": "ID", "not_instance": "yes"}, "give either a label"),
        ({"id": "ID", "label": "low", "extra": 1}, "an answer is"),
        (["ID", "low"], "an answer is"),
    ],
)
def test_bad_answers_are_refused_and_not_written(run, body, error):
    first_id = json.loads((run / "data.jsonl").read_text().splitlines()[0])["id"]
    if isinstance(body, dict) and body.get("id") == "ID":
        body["id"] = first_id
    with serving(run) as url:
        status, reply = request(url, "POST", "/api/answer", body)
    assert status == 400 and error in reply["error"]
    assert not (run / "review.jsonl").exists()


def test_hostile_requests(run):
    (run / "data-analysis").mkdir()
    (run / "data-analysis" / "labels.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    (run / "data-analysis" / "secret.png").symlink_to(run / "manifest.json")
    with serving(run) as url:
        assert request(url, "GET", "/plots/labels.png")[0] == 200
        for path in (
            "/static/../../../etc/passwd",
            "/static/%2e%2e/%2e%2e/etc/passwd",
            "/plots/../manifest.json",
            "/plots/secret.png",  # a link out of the folder is not followed
            "/data.jsonl",
            "/static/index.html",
        ):
            assert request(url, "GET", path)[0] == 404, path
        assert request(url, "GET", "/", headers={"Host": "attacker.example:80"})[0] == 403
        big = json.dumps({"id": "x", "label": "a" * 5000})
        assert request(url, "POST", "/api/answer", big, {"Content-Type": "application/json"})[0] == 413
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert request(url, "POST", "/api/answer", "id=x&label=low", form)[0] == 415
        assert (
            request(url, "POST", "/api/answer", "{not json", {"Content-Type": "application/json"})[0] == 400
        )
        for query in ("count=100000", "start=-1", "count=x", "source=../manifest", "relabeled=maybe"):
            assert request(url, "GET", "/api/instances?" + query)[0] == 400, query
        status, page = request(url, "GET", "/")
        assert status == 200 and b"review.js" in page
    assert not (run / "review.jsonl").exists()


def test_summary_prints_agreement_with_wilson_intervals(run, capsys):
    records = [json.loads(line) for line in (run / "data.jsonl").read_text().splitlines()]
    with serving(run) as url:
        for record in records[:4]:  # the reviewer agrees with the final label every time
            request(url, "POST", "/api/answer", {"id": record["id"], "label": record["label"]})
    assert main(["review", str(run), "--summary"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"4 answers in {run / 'review.jsonl'}")
    assert "reviewer vs final label: 100.0% (95% CI 51.0%-100.0%), 4 of 4" in out
    agree = sum(r["label"] == r["constrained_label"] for r in records[:4])
    assert f"reviewer vs constrained label: {agree / 4:.1%}" in out


def test_review_errors_are_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    for args, message in [
        ([str(tmp_path)], "has no data.jsonl"),
        ([str(tmp_path / "missing"), "--summary"], "has no data.jsonl"),
    ]:
        out = subprocess.run(
            [sys.executable, "-m", "targen_dspy.cli", "review", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert out.returncode == 2 and message in out.stderr and out.stderr.count("\n") == 1


def test_a_run_of_another_spec_needs_task(run, capsys):
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "spec_hash": "0000"}))
    assert main(["review", str(run), "--summary"]) == 2
    assert "made from another version of ticket_urgency" in capsys.readouterr().err
    (run / "manifest.json").write_text(json.dumps({**manifest, "task": "my_own"}))
    assert main(["review", str(run), "--summary"]) == 2
    assert "pass --task with its spec .yaml" in capsys.readouterr().err
