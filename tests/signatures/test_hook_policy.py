"""A spec from someone else cannot run code: only shipped hooks and hooks registered by installed packages
resolve, anything else is refused before it is imported unless the user trusts the spec."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from targen_dspy.errors import SpecError
from targen_dspy.signatures import load_task, parse_spec
from targen_dspy.signatures.hook_policy import ENTRY_POINT_GROUP, TRUST_FLAG, resolve_hook
from targen_dspy.signatures.hooks import SHIPPED, place_choices

EVIL = {
    "name": "evil",
    "description": "A task. Each example is a text and its label says whether it is nice.",
    "fields": {"touch": "A word.", "pwned": "Another word."},
    "labels": [{"value": 0, "means": "not nice"}, {"value": 1, "means": "nice"}],
    "context": "A place.",
    "seed": {"description": "One word."},
    "correction": "Decide.",
}
# A module whose top-level code leaves a mark: it must never be imported from an untrusted spec.
MARKING_MODULE = """
import pathlib
pathlib.Path("imported.mark").write_text("ran")

def fields(generated, label):
    return {"touch": generated["touch"], "pwned": generated["pwned"]}
"""


def targen(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "targen_dspy.cli", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def write_spec(folder: Path, hook: str) -> Path:
    path = folder / "evil.yaml"
    path.write_text(yaml.safe_dump({**EVIL, "postprocess": hook}))
    return path


@pytest.mark.parametrize("hook", ["subprocess:call", "antigravity:fly", "os:system"])
def test_validate_refuses_a_spec_naming_outside_code(hook, tmp_path):
    out = targen("validate", str(write_spec(tmp_path, hook)), cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert hook in out.stderr and TRUST_FLAG in out.stderr and ENTRY_POINT_GROUP in out.stderr
    assert not (tmp_path / "pwned").exists()


def test_a_refused_hook_is_never_imported(tmp_path):
    (tmp_path / "marking.py").write_text(MARKING_MODULE)
    spec = write_spec(tmp_path, "marking:fields")
    for command in (["validate", str(spec)], ["generate", str(spec), "-n", "2", "-o", "run"]):
        out = targen(*command, cwd=tmp_path)
        assert out.returncode == 2 and "marking:fields" in out.stderr, out.stderr
    assert not (tmp_path / "imported.mark").exists() and not (tmp_path / "run").exists()


def test_antigravity_is_not_imported_in_process(tmp_path):
    sys.modules.pop("antigravity", None)
    with pytest.raises(SpecError, match=TRUST_FLAG):
        load_task(str(write_spec(tmp_path, "antigravity:fly")))
    assert "antigravity" not in sys.modules


def test_trusting_the_spec_imports_its_hook(tmp_path):
    (tmp_path / "marking.py").write_text(MARKING_MODULE)
    spec = write_spec(tmp_path, "marking:fields")
    out = targen("validate", str(spec), TRUST_FLAG, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "imported.mark").read_text() == "ran"


def test_shipped_hooks_resolve_by_path_or_name_and_helpers_do_not():
    assert resolve_hook("targen_dspy.signatures.hooks:place_choices") is place_choices
    assert resolve_hook("place_choices") is place_choices
    assert set(SHIPPED) == {"place_choices", "word_offsets", "pronoun_spans", "cloze_fields"}
    with pytest.raises(SpecError, match="the shipped hooks are"):
        resolve_hook("targen_dspy.signatures.hooks:find_word")  # a helper, not a hook
    with pytest.raises(SpecError, match="neither a shipped hook nor registered"):
        resolve_hook("no_such_hook")


@pytest.mark.parametrize("reference", ["os.system('x'):y", "a:b:c", "", "mod:", "../evil:fn"])
def test_malformed_references_are_refused(reference):
    with pytest.raises(SpecError, match="not a hook name"):
        resolve_hook(reference, trust_code=True)


def test_catalogue_tasks_keep_their_hooks():
    for name in ("copa", "wic", "wsc", "record"):
        spec = load_task(name)
        assert spec.postprocessor() is SHIPPED[spec.postprocess.rsplit(":", 1)[1]]


def test_an_installed_package_registers_a_hook(tmp_path, monkeypatch):
    """A distribution on sys.path with a `targen.hooks` entry point: its hook resolves without trust."""
    (tmp_path / "registered_hooks.py").write_text(MARKING_MODULE)
    info = tmp_path / "registered_hooks-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: registered-hooks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(f"""
        [{ENTRY_POINT_GROUP}]
        evil_fields = registered_hooks:fields
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for reference in ("evil_fields", "registered_hooks:fields"):
        spec = parse_spec({**EVIL, "postprocess": reference})
        assert spec.postprocessor()({"touch": "a", "pwned": "b"}, 0) == {"touch": "a", "pwned": "b"}
