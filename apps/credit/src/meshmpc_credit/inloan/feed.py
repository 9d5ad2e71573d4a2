"""Receiver-only monthly feed: a partner's OPRF-sealed table the bank opens for its loans.

Set-up (once per partner and loan book): the bank blinds H1(k) of every key
of its book (padded with random dummies to ``pad_to`` keys), the partner
multiplies by its OPRF key and returns the points, the bank unblinds them into
F(k) (2HashDH OPRF, :mod:`meshmpc.crypto.oprf`). The partner sees only uniform
group elements, as many as the public ``pad_to``: nothing about which firms
the bank lends to.

Each month the partner seals one fixed-width record per key it holds under
tag = H(F(k), "tag", month) and pad = H(F(k), "pad", month), sorts by tag and
sends the whole table to the bank; it receives nothing in that phase. The bank
recomputes tag and pad from its F(k) and opens the records of its own loans
only; other rows stay pseudorandom to it (a record is sealed under F(k) of a
key the bank never asked about). Security: semi-honest, the partner's view is
the set-up's blinded points; the bank learns its own loans' records and the
partner's table size. Cost per month: n_partner x (8 + RECORD_BYTES) bytes,
one BLAKE2b call per row each side, no public-key operation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from meshmpc.crypto import oprf
from meshmpc.crypto.hashing import item_hash
from meshmpc.errors import MeshMPCError
from meshmpc.net import Context

RECORD_BYTES = 16
DOMAIN = b"mpc.credit.feed1"


class FeedError(MeshMPCError, ValueError):
    """A feed message is malformed; the message names the partner."""


def key_items(keys: Sequence[str] | pa.Array) -> list[bytes]:
    """The OPRF inputs of the credit codes (UTF-8)."""
    values = keys.to_pylist() if isinstance(keys, pa.Array | pa.ChunkedArray) else list(keys)
    return [str(k).encode() for k in values]


async def open_book(ctx: Context, partner: str, keys: Sequence[str] | pa.Array,
                    pad_to: int) -> npt.NDArray[np.uint8]:
    """Bank side of the set-up: F(k) of every key of the book, (n, 32) rows."""
    items = key_items(keys)
    if len(items) > pad_to:
        raise FeedError(f"book of {len(items)} loans exceeds pad_to={pad_to}; raise pad_to")
    dummies = [os.urandom(24) for _ in range(pad_to - len(items))]
    batch = oprf.blind(items + dummies)
    await ctx.send(partner, "blinded", np.frombuffer(b"".join(batch.points), np.uint8))
    got = await ctx.recv(partner, "evaluated")
    if not isinstance(got, np.ndarray) or got.size != 32 * pad_to:
        raise FeedError(f"party {partner} answered {getattr(got, 'size', '?')} OPRF bytes, "
                        f"expected {32 * pad_to}")
    values = oprf.finalize(batch, got.reshape(pad_to, 32))
    return np.frombuffer(b"".join(values[: len(items)]), np.uint8).reshape(len(items), 32)


async def answer_book(ctx: Context, bank: str, key: oprf.OprfKey, pad_to: int) -> None:
    """Partner side of the set-up: evaluate the bank's ``pad_to`` blinded points."""
    got = await ctx.recv(bank, "blinded")
    if not isinstance(got, np.ndarray) or got.size != 32 * pad_to:
        raise FeedError(f"party {bank} sent {getattr(got, 'size', '?')} blinded bytes, "
                        f"expected {32 * pad_to}")
    await ctx.send(bank, "evaluated", key.evaluate_blinded_rows(got.reshape(pad_to, 32)).ravel())


def _derive(prf_rows: npt.NDArray[np.uint8], label: bytes, month: int) -> npt.NDArray[np.uint8]:
    return item_hash(np.ascontiguousarray(prf_rows), key=label + month.to_bytes(4, "little"),
                     domain=DOMAIN)


def seal_month(prf_rows: npt.NDArray[np.uint8], records: npt.NDArray[np.uint8],
               month: int) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]]:
    """Partner: (sorted tags, sealed records) of its rows for ``month``."""
    if records.shape != (prf_rows.shape[0], RECORD_BYTES):
        raise FeedError(f"records must be ({prf_rows.shape[0]}, {RECORD_BYTES}) bytes, "
                        f"got {records.shape}")
    tags = np.ascontiguousarray(_derive(prf_rows, b"tag", month)[:, :8]).view(np.uint64).ravel()
    sealed = records ^ _derive(prf_rows, b"pad", month)
    order = np.argsort(tags, kind="stable")
    return tags[order], np.ascontiguousarray(sealed[order])


def open_month(prf_rows: npt.NDArray[np.uint8], tags: npt.NDArray[np.uint64],
               sealed: npt.NDArray[np.uint8],
               month: int) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint8]]:
    """Bank: (found, records) for each of its loans (records zero where not found)."""
    mine = np.ascontiguousarray(_derive(prf_rows, b"tag", month)[:, :8]).view(np.uint64).ravel()
    at = np.minimum(np.searchsorted(tags, mine), max(tags.size - 1, 0))
    found = tags.size > 0 and tags[at] == mine if tags.size else np.zeros(mine.size, bool)
    found = np.asarray(found, dtype=bool)
    records = np.zeros((mine.size, RECORD_BYTES), np.uint8)
    if found.any():
        pads = _derive(prf_rows[found], b"pad", month)
        records[found] = sealed[at[found]] ^ pads
    return found, records


async def send_month(ctx: Context, bank: str, tags: npt.NDArray[np.uint64],
                     sealed: npt.NDArray[np.uint8], month: int) -> None:
    """Partner: send the month's sealed table (it receives nothing in return)."""
    await ctx.send(bank, f"tags/{month}", tags)
    await ctx.send(bank, f"sealed/{month}", sealed.ravel())


async def recv_month(ctx: Context, partner: str,
                     month: int) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]]:
    """Bank: the partner's sealed table of ``month``, checked."""
    tags = await ctx.recv(partner, f"tags/{month}")
    sealed = await ctx.recv(partner, f"sealed/{month}")
    if not isinstance(tags, np.ndarray) or tags.dtype != np.uint64 or \
            not isinstance(sealed, np.ndarray) or sealed.size != tags.size * RECORD_BYTES:
        raise FeedError(f"party {partner} sent a malformed sealed table for month {month}")
    return tags, sealed.reshape(tags.size, RECORD_BYTES)
