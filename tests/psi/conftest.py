"""Helpers for PSI tests: random key sets and CSV inputs."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv


def random_keys(rng: random.Random, n: int, prefix: str = "") -> list[str]:
    return [f"{prefix}{rng.getrandbits(64):016x}" for _ in range(n)]


def write_csv(path: Path, columns: dict[str, list[object]]) -> Path:
    pacsv.write_csv(pa.table(columns), path)
    return path
