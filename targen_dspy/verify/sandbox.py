"""Running model-written Python in a separate, locked-down process, and reading its answer.

`run_python` writes the code into a fresh temporary directory, starts `python -I -S -B child.py` there
(isolated mode, no site-packages, no bytecode written) with an empty environment, stdin from /dev/null
and stdout/stderr to files, and kills its whole process group after a wall-clock timeout. The child
(`child.py`) locks itself down before it runs the code: resource limits, Landlock when the kernel has
it, and an audit hook. When `unshare --user --net` works on this machine (probed once), the child also
runs in a network namespace of its own, where there is no network interface but a loopback that is down.

What holds where (see the README, "Verification options"): the time, CPU and memory limits always; the
filesystem and TCP restrictions at the kernel level with Landlock (Linux 5.13+; TCP from 6.7), else
only through the audit hook, which PEP 578 says is not a security boundary; the network at the kernel
level with a network namespace. It is no container: the code runs as the same user, and what the
stdlib directory holds is readable.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CHILD = Path(__file__).with_name("child.py")
LAYERS_MARK = "\x00sandbox-layers:"  # the child's first stderr line (as in child.py)
LAYERS = ("rlimits", "landlock", "hook", "netns")
SCRIPT = "solution.py"
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")


@dataclass(frozen=True)
class SandboxLimits:
    seconds: float = 10.0  # wall clock, then the process group is killed
    cpu_seconds: int = 5
    memory_mb: int = 512  # address space
    file_mb: int = 4  # largest file the code may write (its stdout included)
    output_chars: int = 10_000  # of stdout kept


@dataclass(frozen=True)
class SandboxResult:
    stdout: str
    answer: int | float | None  # the last number printed
    error: str | None  # the exception's line, a limit that was hit, or that no number was printed
    timed_out: bool  # killed by the wall-clock timeout or the CPU limit
    layers: tuple[str, ...]  # the defences that were in force

    @property
    def ok(self) -> bool:
        return self.error is None and self.answer is not None


@functools.cache
def network_namespace() -> tuple[str, ...]:
    """The command prefix that runs a process without network (`unshare --user --net`, or `unshare
    --net` where only privileged namespaces work), or () if neither works here. Probed once."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    for prefix in ((unshare, "--user", "--net"), (unshare, "--net")):
        try:
            probe = subprocess.run(
                [*prefix, sys.executable, "-I", "-S", "-c", ""], capture_output=True, timeout=20
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return prefix
    return ()


def run_python(
    code: str, limits: SandboxLimits | None = None, layers: Iterable[str] = LAYERS
) -> SandboxResult:
    """Run `code` in the sandbox and return what it printed and its last number (a bare expression on
    the last line is printed, as in a notebook). `layers` leaves some defences out (the tests check each
    one alone); the default is all of them."""
    limits = limits or SandboxLimits()
    layers = tuple(layers)
    unknown = set(layers) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown sandbox layers {sorted(unknown)}; use some of {LAYERS}")
    prefix = network_namespace() if "netns" in layers else ()
    with (
        tempfile.TemporaryDirectory(prefix="targen-sandbox-") as workdir,
        tempfile.TemporaryFile() as stdout,
        tempfile.TemporaryFile() as stderr,
    ):
        Path(workdir, SCRIPT).write_text(code, encoding="utf-8")
        config = {
            "workdir": workdir,
            "script": SCRIPT,
            "layers": [layer for layer in layers if layer != "netns"],
            "cpu_seconds": limits.cpu_seconds,
            "memory_bytes": limits.memory_mb * 2**20,
            "file_bytes": limits.file_mb * 2**20,
        }
        command = [*prefix, sys.executable, "-I", "-S", "-B", str(CHILD), json.dumps(config)]
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env={},
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group, killed as a whole
        )
        try:
            process.wait(timeout=limits.seconds)
            wall_timeout = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            wall_timeout = True
        out = _read(stdout, limits.output_chars)
        err = _read(stderr, 20_000)
    in_force: tuple[str, ...] = ()
    if err.startswith(LAYERS_MARK):
        first, _, err = err.partition("\n")
        in_force = tuple(filter(None, first.removeprefix(LAYERS_MARK).split(",")))
        in_force += ("netns",) if prefix else ()
    error, timed_out = _error(process.returncode, err, wall_timeout, limits)
    answer = last_number(out)
    if error is None and answer is None:
        error = "the code printed no number"
    return SandboxResult(stdout=out, answer=answer, error=error, timed_out=timed_out, layers=in_force)


def _read(file, chars: int) -> str:
    file.seek(0)
    return file.read(chars * 4).decode("utf-8", errors="replace")[:chars]


def _error(
    returncode: int, stderr: str, wall_timeout: bool, limits: SandboxLimits
) -> tuple[str | None, bool]:
    if wall_timeout:
        return f"timed out after {limits.seconds:g} s", True
    if returncode == -signal.SIGXCPU or returncode == -signal.SIGKILL:
        return f"CPU time limit of {limits.cpu_seconds} s reached", True
    if returncode == -signal.SIGXFSZ:
        return f"wrote more than {limits.file_mb} MB", False
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}", False
    if returncode != 0:
        lines = [line for line in stderr.splitlines() if line.strip()]
        return (lines[-1][:300] if lines else f"exit status {returncode}"), False
    return None, False


def last_number(text: str) -> int | float | None:
    """The last number in `text` ("1,250" is 1250); an integral one as an int."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    value = float(found[-1].replace(",", ""))
    return int(value) if value.is_integer() and abs(value) < 2**53 else value
