"""`--corpus DIR` as a user may hand it over: binary, non-UTF-8 and huge files, links out of the
directory, an empty directory, a file. Each is a one-line error before any model call (the corpus is
loaded when the program is built), and a link out of the directory is never read."""

from __future__ import annotations

import pytest

from targen_dspy.backends.fake_openai import FakeOpenAI
from targen_dspy.errors import RunError
from targen_dspy.verify import retrieval
from targen_dspy.verify.retrieval import Corpus
from tests.fuzzing import Sandbox, assert_clean_error, cli


def make_corpus(box: Sandbox, files: dict[str, bytes]):
    corpus = box.work / "corpus"
    corpus.mkdir()
    for name, content in files.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_bytes(content)
    return corpus


GOOD = b"The museum opened in 1994 and holds four thousand paintings.\n"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.txt": GOOD, "b.txt": b"\x89PNG\r\n\x1a\n\x00\x00"}, "b.txt is a binary file"),
        ({"a.txt": GOOD, "notes.md": "café".encode("latin-1")}, "notes.md is not UTF-8 text"),
        ({"a.txt": GOOD, "sub/big.txt": b"word " * 300_000}, "big.txt is larger than"),
        ({}, "has no .txt"),
        ({"a.txt": b"", "b.md": b"  \n\n"}, "text files are empty"),
        ({"a.bin": GOOD}, "has no .txt"),
    ],
)
def test_bad_corpus_files(sandbox, monkeypatch, files, message):
    monkeypatch.setattr(retrieval, "MAX_FILE_BYTES", 1_000_000)
    corpus = make_corpus(sandbox, files)
    with FakeOpenAI() as server:
        code, err = cli(
            "generate",
            "rte",
            "-n",
            "1",
            "-o",
            str(sandbox.work / "run"),
            "--corpus",
            str(corpus),
            "-q",
            "--model",
            "openai/x",
            "--api-base",
            server.api_base,
        )
        assert server.calls == 0
    assert_clean_error(code, err)
    assert message in err
    assert not (sandbox.work / "run").exists()
    sandbox.unchanged_outside(sandbox.work)


def test_a_link_out_of_the_corpus_is_not_read(sandbox, monkeypatch):
    secret = sandbox.root / "sentinel" / "keep.txt"
    corpus = make_corpus(sandbox, {"a.txt": GOOD})
    (corpus / "secret.txt").symlink_to(secret)
    read = []
    original = retrieval.read_text
    monkeypatch.setattr(
        retrieval, "read_text", lambda path, *a, **k: read.append(path) or original(path, *a, **k)
    )
    with pytest.raises(RunError, match="secret.txt links outside"):
        Corpus.load(corpus)
    assert all(path.name != "secret.txt" for path in read)
    code, err = cli("generate", "rte", "-n", "1", "--corpus", str(corpus), "--model", "openai/x")
    assert_clean_error(code, err)
    sandbox.unchanged_outside(sandbox.work)


def test_links_inside_the_corpus_and_loops(sandbox):
    corpus = make_corpus(sandbox, {"a.txt": GOOD, "sub/b.md": b"A second passage about trains.\n"})
    (corpus / "same.txt").symlink_to(corpus / "a.txt")
    (corpus / "loop.txt").symlink_to(corpus / "loop.txt")
    (corpus / "dir-link").symlink_to(sandbox.root / "sentinel", target_is_directory=True)  # not walked
    loaded = Corpus.load(corpus)
    assert sorted(p.source for p in loaded.passages) == ["a.txt", "same.txt", "sub/b.md"]


def test_a_corpus_that_is_a_file_or_missing(sandbox):
    path = sandbox.work / "notes.txt"
    path.write_bytes(GOOD)
    for corpus, message in ((path, "is a file"), (sandbox.work / "nowhere", "no such directory")):
        code, err = cli("generate", "rte", "-n", "1", "--corpus", str(corpus), "--model", "openai/x")
        assert_clean_error(code, err)
        assert message in err


def test_the_total_size_is_capped(sandbox, monkeypatch):
    monkeypatch.setattr(retrieval, "MAX_CORPUS_BYTES", 100)
    corpus = make_corpus(sandbox, {"a.txt": GOOD, "b.txt": GOOD})
    with pytest.raises(RunError, match="holds over 100 bytes of text"):
        Corpus.load(corpus)
