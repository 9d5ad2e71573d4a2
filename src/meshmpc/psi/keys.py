"""Key preparation: composite keys, normalisation, empty and duplicate keys, digests.

Every row's key (one or several columns, read as text) is normalised by the
shared rule of :mod:`meshmpc.data.keynorm` (full-width to ASCII, whitespace
trim, optional lower-casing), joined with the unit separator U+001F when
composite, and hashed to a 128-bit digest with BLAKE2b-128 (personalised for
PSI). All protocols work on these digests; two parties agree on a row exactly
when their normalised keys are equal (up to a 2^-128-per-pair digest collision).

Empty keys (a null or empty component) and repeated keys are counted and
reported with example row numbers (1-based data rows, header not counted), then
dropped, kept once, or turned into an error according to :class:`KeyOptions`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc import _core
from meshmpc.data.keynorm import KeyRule, normalise
from meshmpc.psi.errors import PsiInputError

KEY_SEPARATOR = "\x1f"
DIGEST_PERSON = b"meshmpc-psi-key1"
EXAMPLES = 5

Digests = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class KeyOptions:
    """How keys are read: columns, normalisation, and what to do with bad rows.

    ``on_empty``: "drop" (report and skip) or "error". ``on_duplicate``:
    "first" (keep the first row of each key, report the others) or "error".
    """

    columns: tuple[str, ...]
    trim: bool = True
    casefold: bool = False
    on_empty: Literal["drop", "error"] = "drop"
    on_duplicate: Literal["first", "error"] = "first"
    halfwidth: bool = True

    @property
    def rule(self) -> KeyRule:
        """The shared normalisation rule these options select."""
        return KeyRule(trim=self.trim, casefold=self.casefold, halfwidth=self.halfwidth)

    def agreement(self) -> dict[str, object]:
        """The settings both parties must share for their keys to be comparable."""
        return {"key_columns": len(self.columns), **self.rule.agreement()}


@dataclass
class KeyReport:
    """What key preparation found in one input, with example 1-based row numbers."""

    rows: int = 0
    empty: int = 0
    empty_examples: list[int] = field(default_factory=list)
    duplicates: int = 0
    duplicate_examples: list[tuple[int, int]] = field(default_factory=list)

    def merge(self, other: KeyReport) -> None:
        self.rows += other.rows
        self.empty += other.empty
        self.duplicates += other.duplicates
        self.empty_examples = (self.empty_examples + other.empty_examples)[:EXAMPLES]
        dup = self.duplicate_examples + other.duplicate_examples
        self.duplicate_examples = dup[:EXAMPLES]

    def describe(self) -> str:
        parts = [f"{self.rows} rows"]
        if self.empty:
            parts.append(f"{self.empty} empty keys (rows {self.empty_examples})")
        if self.duplicates:
            ex = ", ".join(f"row {r} repeats row {f}" for r, f in self.duplicate_examples)
            parts.append(f"{self.duplicates} duplicate keys ({ex})")
        return "; ".join(parts)


def digest_items(items: pa.Array) -> Digests:
    """BLAKE2b-128 digests of binary/string items, as an (n, 16) uint8 array.

    Whole batches are hashed in C on every core (libsodium's BLAKE2b called from
    the core, as :func:`meshmpc.crypto.hashing.item_hash` does on one); the
    pure-Python path computes the identical function where the kernel is missing.
    """
    try:
        from meshmpc.crypto.hashing import _flatten
        from meshmpc.crypto.oprf import threads
        from meshmpc.crypto.sodium import addresses
    except ImportError:  # pragma: no cover - the kernel ships with meshmpc
        return _digest_python(items)
    arr = items.cast(pa.large_binary()) if items.null_count == 0 else items
    data, offsets = _flatten(arr)  # null keys are refused there, as item_hash does
    out = np.empty((len(offsets) - 1, 16), dtype=np.uint8)
    _core.blake2b_items_into(addresses(), data, offsets, b"", DIGEST_PERSON, out, threads())
    return out


def _digest_python(items: pa.Array) -> Digests:
    values = items.cast(pa.binary()).to_pylist()
    joined = b"".join(
        hashlib.blake2b(v, digest_size=16, person=DIGEST_PERSON).digest() for v in values
    )
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, 16).copy()


def _normalise(col: pa.ChunkedArray | pa.Array, opts: KeyOptions) -> pa.Array:
    return normalise(col, opts.rule)


def combined_keys(batch: pa.RecordBatch | pa.Table, opts: KeyOptions, source: str,
                  first_row: int = 1) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
    """The joined, normalised key of every row and a mask of rows whose key is empty."""
    parts = [_normalise(batch.column(name), opts) for name in opts.columns]
    empty = np.zeros(batch.num_rows, dtype=bool)
    for part in parts:
        bad = pc.or_kleene(pc.is_null(part), pc.equal(pc.binary_length(part), 0))
        empty |= bad.fill_null(True).to_numpy(zero_copy_only=False)
    if len(parts) == 1:
        return parts[0], empty
    for name, part in zip(opts.columns, parts, strict=True):
        has_sep = pc.match_substring(part, KEY_SEPARATOR).fill_null(False)
        hits = np.flatnonzero(has_sep.to_numpy(zero_copy_only=False))
        if len(hits):
            rows = [int(r) + first_row for r in hits[:EXAMPLES]]
            raise PsiInputError(source, f"key contains the control character U+001F at rows "
                                        f"{rows}; remove it", name)
    return pc.binary_join_element_wise(*parts, KEY_SEPARATOR), empty


@dataclass
class PreparedKeys:
    """Digests of the rows taking part in PSI and where they came from.

    ``rows[i]`` is the 0-based index (in the input) of the row with digest
    ``digests[i]``; rows with empty or repeated keys are not in ``rows``.
    """

    digests: Digests
    rows: npt.NDArray[np.int64]
    report: KeyReport


def _examples(mask_rows: npt.NDArray[np.int64], first_row: int) -> list[int]:
    return [int(r) + first_row for r in mask_rows[:EXAMPLES]]


def prepare_keys(batch: pa.RecordBatch | pa.Table, opts: KeyOptions, source: str,
                 first_row: int = 1) -> PreparedKeys:
    """Digest the keys of ``batch`` and apply the empty/duplicate options.

    ``first_row`` is the 1-based row number of the batch's first row, so that
    reports from a streamed file name the right rows.
    """
    keys, empty = combined_keys(batch, opts, source, first_row)
    report = KeyReport(rows=batch.num_rows)
    empty_rows = np.flatnonzero(empty)
    report.empty = len(empty_rows)
    report.empty_examples = _examples(empty_rows, first_row)
    if report.empty and opts.on_empty == "error":
        raise PsiInputError(source, f"{report.empty} rows have an empty key, e.g. rows "
                                    f"{report.empty_examples}", ",".join(opts.columns))
    rows = np.flatnonzero(~empty).astype(np.int64)
    digests = digest_items(keys.filter(pa.array(~empty)) if report.empty else keys)
    return _drop_duplicates(PreparedKeys(digests, rows, report), opts, source, first_row)


def _drop_duplicates(prep: PreparedKeys, opts: KeyOptions, source: str,
                     first_row: int) -> PreparedKeys:
    first = _core.psi_first_index(prep.digests)
    repeated = np.flatnonzero(first != np.arange(len(first)))
    prep.report.duplicates = len(repeated)
    prep.report.duplicate_examples = [
        (int(prep.rows[i]) + first_row, int(prep.rows[first[i]]) + first_row)
        for i in repeated[:EXAMPLES]
    ]
    if len(repeated) and opts.on_duplicate == "error":
        ex = ", ".join(f"row {r} repeats row {f}" for r, f in prep.report.duplicate_examples)
        raise PsiInputError(source, f"{len(repeated)} duplicate keys ({ex})",
                            ",".join(opts.columns))
    if len(repeated):
        keep = first == np.arange(len(first))
        prep.digests = prep.digests[keep]
        prep.rows = prep.rows[keep]
    return prep


def check_columns(names: Sequence[str], opts: KeyOptions, source: str) -> None:
    """Fail early, naming the file and column, when a key column is missing."""
    for c in opts.columns:
        if c not in names:
            raise PsiInputError(source, f"no key column {c!r}; columns are {list(names)}", c)
