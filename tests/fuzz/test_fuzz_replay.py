"""Replays every fuzz corpus (and every crash ever found) through its target.

Runs in ``make test`` without atheris: a crash found by ``make fuzz`` is saved
as ``corpus/<target>/crash-*`` and fails here until the bug is fixed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from targets import load, names  # noqa: E402


def test_every_target_has_a_corpus() -> None:
    assert names(), "no fuzz targets registered"
    for name in names():
        assert any((HERE / "corpus" / name).glob("*")), f"target {name} has no corpus"


@pytest.mark.parametrize("name", names())
def test_corpus_replays_cleanly(name: str) -> None:
    target = load(name)
    files = sorted((HERE / "corpus" / name).glob("*"))
    started = time.perf_counter()
    for path in files:
        try:
            target(path.read_bytes())
        except Exception as exc:
            raise AssertionError(f"fuzz input {path} crashes target {name}: {exc!r}") from exc
    assert time.perf_counter() - started < 20, "corpus too slow to replay; minimise it"
