"""The one key-normalisation rule of meshmpc: PSI, PIR and the schema checks share it.

Two parties' keys match when their *normalised* text is equal. The rule, in
this order, each step switchable with the same command-line options
everywhere (``--no-trim``, ``--casefold``, ``--no-halfwidth``):

1. ``halfwidth`` (default on): Unicode NFKC, which turns full-width letters and
   digits (``９１３１``, common in Chinese office data) into ASCII ``9131``;
2. ``trim`` (default on): strip leading and trailing whitespace (after step 1,
   so the ideographic space U+3000 counts too);
3. ``casefold`` (default off): lower-case, for codes compared case-insensitively.

Everything is one Arrow kernel per step over a whole column (no Python loop).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class KeyRule:
    """Which normalisation steps apply (see the module docstring)."""

    trim: bool = True
    casefold: bool = False
    halfwidth: bool = True

    def agreement(self) -> dict[str, bool]:
        """The settings every party must share for their keys to be comparable."""
        return {"trim": self.trim, "casefold": self.casefold, "halfwidth": self.halfwidth}


def _all_ascii(arr: pa.Array) -> bool:
    """Whether every byte of the string data buffer is ASCII, where NFKC is the identity
    (a 10^7-row key column: ~1 CPU-s of NFKC saved; a buffer with any other byte is
    normalised as before)."""
    data = arr.buffers()[2] if arr.type == pa.string() else None
    return data is not None and (data.size == 0 or int(np.frombuffer(data, np.uint8).max()) < 128)


def normalise(column: pa.Array | pa.ChunkedArray, rule: KeyRule) -> pa.Array:
    """The normalised text of every value (nulls stay null)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    arr = arr.cast(pa.string())
    if rule.halfwidth and not _all_ascii(arr):
        arr = pc.utf8_normalize(arr, form="NFKC")
    if rule.trim:
        arr = pc.utf8_trim_whitespace(arr)
    if rule.casefold:
        arr = pc.utf8_lower(arr)
    return arr


def add_key_rule_options(parser: argparse.ArgumentParser) -> None:
    """The same three options on every command that compares keys."""
    parser.add_argument("--no-trim", action="store_true",
                        help="keep leading/trailing whitespace in keys (default: trimmed)")
    parser.add_argument("--casefold", action="store_true",
                        help="compare keys lower-cased (default: case matters)")
    parser.add_argument("--no-halfwidth", action="store_true",
                        help="keep full-width letters/digits as they are (default: "
                        "NFKC turns them into ASCII)")


def key_rule_from_args(args: argparse.Namespace) -> KeyRule:
    """The :class:`KeyRule` the options of :func:`add_key_rule_options` chose."""
    return KeyRule(trim=not args.no_trim, casefold=args.casefold,
                   halfwidth=not args.no_halfwidth)
