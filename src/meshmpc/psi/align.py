"""Aligned outputs: the rows of each party in the shared intersection order.

Every party that learns the intersection gets its matched rows in the same
canonical order (fixed by the protocol, not by either input file), so row i of
every party's output describes the same entity and vertical training lines up.

Modes: ``inner`` (matched rows only), ``left`` (matched rows in canonical
order, then this party's unmatched rows in input order, with a boolean column
``psi_matched``), ``difference`` (this party's unmatched rows, input order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

Mode = Literal["inner", "left", "difference"]
MATCHED_COLUMN = "psi_matched"


def output_columns(table_names: Sequence[str], keys: Sequence[str],
                   payload: Sequence[str] | None) -> list[str]:
    """Key columns first, then the chosen payload columns (all others when None)."""
    rest = [c for c in table_names if c not in keys] if payload is None else list(payload)
    return list(dict.fromkeys([*keys, *rest]))


Rows = npt.NDArray[np.int64]


def unmatched_rows(kept: Rows, matched: Rows) -> Rows:
    """Input rows that took part but did not match, in input order."""
    mask = np.ones(len(kept), dtype=bool)
    mask[matched] = False
    return kept[mask]


def aligned_table(table: pa.Table, kept: npt.NDArray[np.int64], matched: npt.NDArray[np.int64],
                  mode: Mode, columns: Sequence[str]) -> pa.Table:
    """Build this party's output from its input table.

    ``kept[i]`` is the input row of digest i; ``matched`` the digest indices of
    the intersection in canonical order.
    """
    source = table.select(list(columns))
    inner_rows = kept[matched]
    if mode == "inner":
        return source.take(pa.array(inner_rows))
    rest = unmatched_rows(kept, matched)
    if mode == "difference":
        return source.take(pa.array(rest))
    rows = np.concatenate([inner_rows, rest])
    flags = np.zeros(len(rows), dtype=bool)
    flags[: len(inner_rows)] = True
    return source.take(pa.array(rows)).append_column(MATCHED_COLUMN, pa.array(flags))
