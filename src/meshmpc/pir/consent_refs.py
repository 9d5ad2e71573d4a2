"""The requester's side of purpose and consent for ``pir query``: references in, batch fields out.

The bank records its consent references itself; a server under its node's
grants receives, with each batch, only the purpose and the count and Merkle
root of the references covering that batch (:mod:`meshmpc.data.consent`).
:class:`BatchConsent` checks everything before anything is sent: the purpose
is one of the configured list, the file holds enough references, each is a
short non-empty string.

Two layouts of the file:

* one reference per row of the keys file (same order): each batch carries
  the references of its own keys;
* any other number, at least one per distinct key asked: the set covers the
  whole query and is sent whole with every batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshmpc.data.consent import DEFAULT_PURPOSES, ConsentError, check_request, consent_fields
from meshmpc.data.loaders import load_table
from meshmpc.userinput import UserError

COLUMN = "consent_ref"


def read_consent_refs(path: Path) -> list[str]:
    """References from a text file (one per line, blank lines skipped) or the
    ``consent_ref`` column (or only column) of a CSV/Parquet file."""
    path = Path(path)
    if path.suffix.lower() in (".csv", ".parquet", ".pq", ".tsv"):
        table = load_table(path, text=True) if path.suffix.lower() != ".parquet" \
            else load_table(path)
        name = COLUMN if COLUMN in table.column_names else \
            (table.column_names[0] if table.num_columns == 1 else None)
        if name is None:
            raise UserError(f"{path}: no {COLUMN!r} column (columns: {table.column_names})")
        values = table.column(name).to_pylist()
        empty = [i + 1 for i, v in enumerate(values) if v is None or not str(v).strip()]
        if empty:
            raise UserError(f"{path}: column {name!r}: empty consent reference in rows "
                            f"{empty[:10]}; every key needs its reference")
        return [str(v).strip() for v in values]
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"--consent-refs {path}: {exc.strerror or exc}") from None
    return [line.strip() for line in lines if line.strip()]


class BatchConsent:
    """The ``purpose`` and ``consent`` fields of each batch of a query (see module doc)."""

    def __init__(self, purpose: str, refs: Sequence[str], keys: Sequence[bytes],
                 rows: Sequence[int], key_rows: int, source: str = "--consent-refs",
                 purposes: dict[str, int] | None = None) -> None:
        self.purpose, self.purposes = purpose, purposes or DEFAULT_PURPOSES
        self.sent: list[int] = []
        try:
            check_request(purpose, refs, self.purposes)
        except ConsentError as exc:
            raise UserError(f"pir query: {exc}") from None
        if len(refs) == key_rows:
            self.per_key = {key: refs[row] for key, row in zip(keys, rows, strict=True)}
            self.whole: dict[str, Any] | None = None
        elif len(refs) >= len(keys):
            self.per_key, self.whole = {}, consent_fields(purpose, refs, self.purposes)
        else:
            raise UserError(f"pir query: {source} holds {len(refs):,} consent references for "
                            f"{len(keys):,} distinct keys ({key_rows:,} rows); give one per "
                            "key row, in the order of --keys")

    def __call__(self, batch: list[bytes]) -> dict[str, Any]:
        """Fields of one batch (counted in ``sent``, so a refusal can say what went before)."""
        self.sent.append(len(batch))
        if self.whole is not None:
            return self.whole
        return consent_fields(self.purpose, [self.per_key[k] for k in batch], self.purposes)

    def answered_before_last(self) -> int:
        """Keys of the batches before the last one sent (the refused one)."""
        return sum(self.sent[:-1])
