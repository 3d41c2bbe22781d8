import pytest

from targen_dspy.signatures import load_task


@pytest.fixture
def wic():
    return load_task("wic")
