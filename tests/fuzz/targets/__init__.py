"""Fuzz targets: one module per target, each exposing ``TestOneInput(data: bytes)``.

The registry is this folder: every ``<name>.py`` here (not starting with an
underscore) is a target named ``<name>``, with its corpus under
``tests/fuzz/corpus/<name>/``. A target raises only on a bug: it catches the
errors its code under test documents for bad input and checks invariants.
Targets import nothing from atheris, so the corpus replays without it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    """Every registered target."""
    return sorted(p.stem for p in HERE.glob("[a-z]*.py"))


def load(name: str) -> Callable[[bytes], None]:
    """The ``TestOneInput`` of target ``name``."""
    module = importlib.import_module(f"targets.{name}")
    fn: Callable[[bytes], None] = module.TestOneInput
    return fn
