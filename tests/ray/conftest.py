"""One local Ray cluster for the whole test session (2 CPUs, no dashboard), shut down at its end. The
tests that need it are skipped, with the reason, where Ray is not installed."""

import logging

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray", reason='needs the ray extra: pip install -e ".[ray]"')
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()
