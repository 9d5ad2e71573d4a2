"""One local Ray cluster on loopback for the scale-out tests (started by the tests)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # scale_inputs.py


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A private Ray head with 2 CPUs and a 200 MB object store, shut down at the end."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, object_store_memory=200 * 1024 * 1024, include_dashboard=False,
             log_to_driver=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()
