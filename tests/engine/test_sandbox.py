"""The sandbox that runs model-written code: code that tries to escape it, through each defence alone
(the audit hook, Landlock, the network namespace) and through all of them together, and fails."""

import http.server
import threading

import pytest

from targen_dspy.verify.sandbox import LAYERS, SandboxLimits, last_number, network_namespace, run_python


def _has_landlock(abi: int = 1) -> bool:
    layers = run_python("print(1)", layers=["landlock"]).layers
    return any(
        layer.startswith("landlock-abi") and int(layer.removeprefix("landlock-abi")) >= abi
        for layer in layers
    )


LANDLOCK = pytest.mark.skipif(not _has_landlock(), reason="this kernel has no Landlock")
LANDLOCK_NET = pytest.mark.skipif(not _has_landlock(4), reason="this kernel's Landlock has no TCP rules")
NETNS = pytest.mark.skipif(not network_namespace(), reason="unshare --net does not work here")

# Each defence on its own must stop the escape; so must the default, all of them.
FILESYSTEM_LAYERS = [
    pytest.param(LAYERS, id="all"),
    pytest.param(["hook"], id="audit-hook"),
    pytest.param(["landlock"], id="landlock", marks=LANDLOCK),
]
NETWORK_LAYERS = [
    pytest.param(LAYERS, id="all"),
    pytest.param(["hook"], id="audit-hook"),
    pytest.param(["landlock"], id="landlock", marks=LANDLOCK_NET),
    pytest.param(["netns"], id="netns", marks=NETNS),
]


def test_benign_code_runs_and_its_last_number_is_the_answer():
    result = run_python("import math, fractions, statistics\nx = 3 * 12 - 9\nprint('steps', 36, 9)\nprint(x)")
    assert result.ok and result.answer == 27 and not result.timed_out
    assert result.stdout.splitlines() == ["steps 36 9", "27"]
    assert {"rlimits", "audit-hook"} <= set(result.layers)


def test_a_bare_expression_on_the_last_line_is_printed():
    assert run_python("packs = 3 * 12\npacks - 9").answer == 27
    assert run_python("print(27)\nprint('done')").answer == 27  # print is not printed again


def test_code_may_use_its_own_working_directory():
    code = "open('notes.txt', 'w').write('41')\nprint(int(open('notes.txt').read()) + 1)"
    assert run_python(code).answer == 42


@pytest.mark.parametrize("layers", FILESYSTEM_LAYERS)
def test_writing_outside_the_temporary_directory_fails(tmp_path, layers):
    target = tmp_path / "escaped.txt"
    result = run_python(f"open({str(target)!r}, 'w').write('pwned')\nprint(1)", layers=layers)
    assert not target.exists()
    assert not result.ok and "PermissionError" in result.error


@pytest.mark.parametrize("layers", FILESYSTEM_LAYERS)
def test_reading_etc_passwd_fails(layers):
    result = run_python("print(open('/etc/passwd').read())", layers=layers)
    assert "root:" not in result.stdout
    assert not result.ok and "PermissionError" in result.error


@pytest.mark.parametrize("layers", FILESYSTEM_LAYERS)
def test_a_symlink_out_of_the_directory_leads_nowhere(layers):
    code = "import os\nos.symlink('/etc/passwd', 'link')\nprint(open('link').read())"
    result = run_python(code, layers=layers)
    assert "root:" not in result.stdout and not result.ok


@pytest.mark.parametrize("layers", FILESYSTEM_LAYERS)
def test_starting_a_process_fails(tmp_path, layers):
    target = tmp_path / "from-shell"
    code = f"import os\nstatus = os.system('touch {target}')\nprint(status)"
    result = run_python(code, layers=layers)
    assert not target.exists()
    assert not result.ok or result.answer != 0  # refused, or the shell could not run


def test_tampering_with_the_audit_hook_fails(tmp_path):
    """Rebinding builtins and the child's globals, or os.path's helpers, does not loosen the hook."""
    target = tmp_path / "escaped.txt"
    code = (
        "import builtins, posixpath, sys\n"
        "builtins.isinstance = lambda *a: False\n"
        "builtins.any = lambda *a: True\n"
        "posixpath._joinrealpath = lambda *a: ('/tmp', True)\n"
        "frame = sys._getframe()\n"
        "while frame.f_back: frame = frame.f_back\n"
        "frame.f_globals['WRITING_EVENTS'] = frozenset()\n"
        f"open({str(target)!r}, 'w').write('pwned')\n"
    )
    result = run_python(code, layers=["hook"])
    assert not target.exists() and "blocked" in result.error


class _Server(http.server.ThreadingHTTPServer):
    requests = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests += 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"73")

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_local_server_answers_outside_the_sandbox(http_server):
    import urllib.request

    port = http_server.server_address[1]
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/").read() == b"73"
    assert http_server.requests == 1


@pytest.mark.parametrize("layers", NETWORK_LAYERS)
@pytest.mark.parametrize("client", ["urllib", "socket"])
def test_connecting_to_a_local_http_server_fails(http_server, layers, client):
    port = http_server.server_address[1]
    if client == "urllib":
        code = f"import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:{port}/').read())"
    else:
        code = (
            "import socket\n"
            f"s = socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
            "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
            "print(s.recv(1000))\n"
        )
    result = run_python(code, layers=layers)
    assert http_server.requests == 0
    assert not result.ok and "73" not in result.stdout


def test_an_infinite_loop_is_stopped_by_the_cpu_limit():
    result = run_python("while True:\n    pass", SandboxLimits(cpu_seconds=1, seconds=60))
    assert result.timed_out and not result.ok and "CPU" in result.error


def test_a_sleeping_program_is_stopped_by_the_wall_clock_timeout():
    result = run_python("import time\ntime.sleep(600)\nprint(1)", SandboxLimits(seconds=1))
    assert result.timed_out and not result.ok and "timed out" in result.error


def test_a_two_gigabyte_allocation_is_a_memory_error():
    result = run_python("data = bytearray(2 * 1024**3)\nprint(len(data))")
    assert not result.ok and result.error.startswith("MemoryError")


def test_errors_are_reported_by_their_last_line():
    assert run_python("print(1 / 0)").error == "ZeroDivisionError: division by zero"
    assert run_python("print((").error.startswith("SyntaxError")
    assert run_python("print('no number here')").error == "the code printed no number"


def test_unknown_layers_are_refused():
    with pytest.raises(ValueError, match="unknown sandbox layers"):
        run_python("print(1)", layers=["chroot"])


@pytest.mark.parametrize(
    "text, number",
    [
        ("27", 27),
        ("The answer is 1,250.", 1250),
        ("-3.5\n", -3.5),
        ("2.0", 2),
        ("7 apples, 12 pears", 12),
        ("", None),
    ],
)
def test_last_number(text, number):
    assert last_number(text) == number and type(last_number(text)) is type(number)
