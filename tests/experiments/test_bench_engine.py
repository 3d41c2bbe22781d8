"""experiments/bench_engine.py: the mock server's traffic figures, the /proc and wait4 measurements, and a
`--quick` smoke run of the bare DSPy loop and `targen generate` (curator left out: it needs its own
virtual environment)."""

import importlib.util
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

from targen_dspy.backends.fake_openai import FakeOpenAI

_ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("bench_engine", _ROOT / "experiments" / "bench_engine.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def _post(url: str, body: dict) -> int:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with bench._LOCAL.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_server_reports_requests_timing_and_most_in_flight():
    with FakeOpenAI(latency=0.3) as server:
        assert bench.server_stats(server.api_base)["first_request"] is None
        chat = {"messages": [{"role": "user", "content": "Respond with a JSON object: `sentence`."}]}
        url = server.api_base + "/chat/completions"
        posts = [threading.Thread(target=_post, args=(url, chat)) for _ in range(3)]
        for post in posts:
            post.start()
        for post in posts:
            post.join()
        stats = bench.server_stats(server.api_base)
    assert (stats["requests"], stats["in_flight"], stats["max_in_flight"]) == (3, 0, 3)
    assert stats["last_answer"] - stats["first_request"] >= 0.3


def test_a_request_without_messages_gets_400_and_counts():
    """Curator reads rate-limit headers with such a request before its first real one."""
    with FakeOpenAI() as server:
        assert _post(server.api_base + "/chat/completions", {"model": "bench", "messages": []}) == 400
        assert bench.server_stats(server.api_base)["requests"] == 1
        assert server.calls == 0


def test_cpu_of_a_running_process_and_none_once_it_has_exited():
    assert bench._cpu_seconds(os.getpid()) > 0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert bench._cpu_seconds(child.pid) is None


def test_quick_run_compares_the_bare_loops_and_targen_and_writes_nothing():
    also = "targen generate --seeds-per-context 8"
    written = bench.RESULTS.stat().st_mtime_ns if bench.RESULTS.exists() else None
    done = subprocess.run(
        [
            sys.executable,
            str(_ROOT / "experiments" / "bench_engine.py"),
            "--quick",
            "--no-curator",
            "--targen-also",
            "--seeds-per-context 8",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {}
    for line in done.stdout.split("\n# ")[0].splitlines():  # the rows printed as they came
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 12 and cells[0] == "40":
            rows[cells[2]] = cells
    assert set(rows) == {"bare DSPy loop", "bare loop, tuned", "targen generate", also}, done.stdout
    bare, tuned, targen = rows["bare DSPy loop"], rows["bare loop, tuned"], rows["targen generate"]
    assert int(bare[4]) == int(tuned[4]) == 80  # two calls a slot
    assert int(targen[4]) >= 80  # and targen's contexts and seeds
    assert 80 < int(rows[also][4]) < int(targen[4])  # twice the seeds per call: fewer seeds calls
    for cells in rows.values():
        assert 0 < int(cells[11]) <= 8 + 1  # workers, and the server counts an answered call a moment longer
        assert float(cells[9]) > 0 and int(cells[10]) > 50  # CPU per call, peak RSS MB
    assert "hosts refused: none (2 of 4 runs checked)" in done.stdout
    startup = {}  # the start-up summary: each client's CPU before its first request, median over its runs
    for line in done.stdout.split("CPU before the first request, median ms")[1].splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 5 and cells[0] in rows:
            startup[cells[0]] = cells
    assert set(startup) == set(rows)
    assert startup["bare DSPy loop"][4] == "-" and float(startup["targen generate"][4]) > 0
    for name, (_, runs, median, spread, _) in startup.items():
        low, high = map(int, spread.split("-"))
        assert runs == "1" and low == high == int(median) > 0 and int(median) == int(rows[name][6])
    assert (bench.RESULTS.stat().st_mtime_ns if bench.RESULTS.exists() else None) == written


def test_clients_refuse_every_host_but_loopback():
    probe = "\n".join(
        [
            "import socket, sys",
            "sys.path.insert(0, sys.argv[1])",
            "import loopback",
            "loopback.refuse_other_hosts()",
            "for host in ('example.com', '192.0.2.1'):",
            "    try: socket.create_connection((host, 80), timeout=1)",
            "    except OSError: pass",
            "server = socket.create_server(('127.0.0.1', 0))",
            "socket.create_connection(server.getsockname()).close()",
            "print(loopback.refused)",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(_ROOT / "experiments" / "bench_clients")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "['example.com', '192.0.2.1']"


def test_without_curator_s_environment_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    """No package index (as without a network): one line, and the other clients still run."""
    monkeypatch.setattr(bench, "CURATOR_VENV", tmp_path / "venv")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    found = bench.clients(no_curator=False)
    assert list(found) == ["bare DSPy loop", "bare loop, tuned", "targen generate"]
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith(f"curator: making {tmp_path / 'venv'}: python -m venv, pip install")
    assert len(said) == 2 and said[1].startswith("curator: cannot be installed (")
