"""The bank's limit on re-binning the same aligned rows.

One binning releases to each owner the WOE of bins of at least ``min_rows``
rows. Several binnings of the *same* rows with different private cut points
could still isolate a few rows by differencing (bin [a, b) minus bin [a, c)).
The bank therefore remembers, per set of aligned rows (a SHA-256 of the
sorted aligned keys), the distinct releases it made (a digest of every
owner's bins, counts and WOE) in ``<state dir>/binning_releases.json`` and
refuses a new distinct release beyond ``max_rebinnings``. Re-running a job
that releases exactly what was released before (the demo, ``--resume``) is
free: it reveals nothing new.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.ml.merge import BinningRefused

STATE_FILE = "binning_releases.json"


def rows_digest(table: pa.Table, key: str | None) -> str:
    """SHA-256 of the sorted aligned keys (of the row count and every column without a key)."""
    h = hashlib.sha256(f"rows={table.num_rows};".encode())
    columns = [key] if key and key in table.column_names else table.column_names
    for name in columns:
        column = table.column(name).combine_chunks()
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        ordered = column.take(pc.sort_indices(column)) if name == key else column
        h.update(name.encode() + b"\0")
        for buffer in ordered.buffers():
            if buffer is not None:
                h.update(memoryview(buffer))
    return h.hexdigest()


def release_digest(plans: dict[str, dict[str, Any]]) -> str:
    """Digest of what one binning releases: every owner's final counts and WOE."""
    canonical = {owner: {name: [list(map(int, p["count"])),
                                [float(np.round(w, 9)) for w in p["woe"]]]
                         for name, p in sorted(features.items())}
                 for owner, features in sorted(plans.items())}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


class RebinGuard:
    """Distinct releases per aligned-row set, persisted in the job's state directory."""

    def __init__(self, state_dir: Path, limit: int) -> None:
        self.path = Path(state_dir) / STATE_FILE
        self.limit = limit

    def _load(self) -> dict[str, list[str]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BinningRefused(f"cannot read the re-binning record {self.path}: {exc}; "
                                 f"restore it (deleting it resets the limit)") from None
        return {str(k): [str(d) for d in v] for k, v in data.items()}

    def record(self, rows: str, release: str) -> int:
        """Count ``release`` for ``rows``; refuse a new one past the limit. Returns the
        number of distinct releases made for these rows."""
        data = self._load()
        seen = data.setdefault(rows, [])
        if release in seen:
            return len(seen)
        if len(seen) >= self.limit:
            raise BinningRefused(
                f"these aligned rows were already binned with {len(seen)} different "
                f"results (limit max_rebinnings={self.limit}): another binning could "
                f"isolate individual labels by differencing; reuse an earlier binning")
        seen.append(release)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)
        return len(seen)
