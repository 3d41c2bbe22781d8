"""A real run to review, made by `targen generate` against the fake OpenAI server, and the review
server over a copy of it."""

import contextlib
import shutil
import threading

import pytest

from targen_dspy.backends.fake_openai import FakeOpenAI
from targen_dspy.cli import main
from targen_dspy.review.run import open_review
from targen_dspy.review.server import make_server


@pytest.fixture(scope="session")
def made_run(tmp_path_factory):
    """ticket_urgency, 16 instances, the corrector relabelling some of them."""
    path = tmp_path_factory.mktemp("review") / "run"
    with FakeOpenAI(flip_labels=0.4) as server:
        args = ["generate", "ticket_urgency", "-n", "16", "-o", str(path), "--model", "openai/x"]
        assert main([*args, "--api-base", server.api_base, "-q"]) == 0
    return path


@pytest.fixture
def run(made_run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(made_run, target)
    return target


@contextlib.contextmanager
def serving(run, share=0.5, seed=0):
    """The review server of `run` on a free port, in a thread; yields its base URL."""
    app = open_review(run, None, False, share, seed)
    server = make_server(app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        app.close()
