"""Receiver-only monthly feed: a partner's OPRF-sealed table the bank opens for its loans.

Set-up (once per loan book): the bank blinds H1(k) of every key of its book
once (padded with random dummies to ``pad_to`` keys) and sends the same
blinded points to every partner (:func:`open_books`); each partner multiplies
by its OPRF key and returns the points, the bank unblinds each partner's
answer into F_P(k) (2HashDH OPRF, :mod:`meshmpc.crypto.oprf`). A partner sees
only uniform group elements, as many as the public ``pad_to``: nothing about
which firms the bank lends to.

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

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


KEY_WIDTH = 40
"""OPRF input width: a length byte and the UTF-8 key, zero padded (credit codes are 18)."""


def key_items(keys: Sequence[str] | pa.Array | pa.ChunkedArray) -> npt.NDArray[np.uint8]:
    """The OPRF inputs of the keys as fixed-width rows, built without a per-key Python call."""
    array = pa.array(list(keys), pa.string()) if not isinstance(keys, pa.Array | pa.ChunkedArray) \
        else keys
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    n = len(array)
    offsets = np.frombuffer(array.buffers()[1], np.int64)[array.offset: array.offset + n + 1]
    data = np.frombuffer(array.buffers()[2] or b"", np.uint8)
    lengths = np.diff(offsets)
    if n and (lengths.max() >= KEY_WIDTH or array.null_count):
        raise FeedError(f"keys must be non-empty strings under {KEY_WIDTH} bytes")
    rows = np.zeros((n, KEY_WIDTH), np.uint8)
    rows[:, 0] = lengths
    span = np.arange(KEY_WIDTH - 1)
    valid = span < lengths[:, None]
    rows[:, 1:][valid] = data[(offsets[:-1, None] + span)[valid]]
    return rows


@dataclass(frozen=True)
class BlindedBook:
    """The bank's book blinded once for every partner: r_i * H1(k_i), padded.

    ``points`` (pad_to, 32) goes to each partner unchanged; ``inverses`` (n, 32)
    are the r_i^-1 of the real keys, kept by the bank to unblind each partner's
    answer. Reusing one blinding across partners is safe: the points are
    uniform group elements independent of the keys (r_i uniform), so the
    partners, even pooling their views, see the same uniform points and
    nothing of the book; each partner's answer k_P * r_i * H1(k_i) unblinds to
    k_P * H1(k_i) exactly as with a blinding of its own.
    """

    items: npt.NDArray[np.uint8]
    points: npt.NDArray[np.uint8]
    inverses: npt.NDArray[np.uint8]

    @property
    def pad_to(self) -> int:
        return int(self.points.shape[0])


def blind_book(keys: Sequence[str] | pa.Array, pad_to: int) -> BlindedBook:
    """Blind the book once (padded with random dummies to ``pad_to``), in C on every core."""
    items = key_items(keys)
    n = items.shape[0]
    if n > pad_to:
        raise FeedError(f"book of {n} loans exceeds pad_to={pad_to}; raise pad_to")
    dummies = np.frombuffer(os.urandom(KEY_WIDTH * (pad_to - n)), np.uint8)
    rows = np.vstack([items, dummies.reshape(-1, KEY_WIDTH)])
    scalars, inverses = oprf.random_scalars(pad_to, inverses=True)
    assert inverses is not None
    blinded = oprf.multiply(scalars, oprf.hash_to_group_many(rows), "hashed")
    return BlindedBook(items, blinded, np.ascontiguousarray(inverses[:n]))


async def open_book(ctx: Context, partner: str, keys: Sequence[str] | pa.Array,
                    pad_to: int, book: BlindedBook | None = None) -> npt.NDArray[np.uint8]:
    """Bank side of the set-up: F(k) of every key of the book, (n, 32) rows.

    ``book`` (from :func:`blind_book`) shares one blinding across partners
    (:func:`open_books`); without it the book is blinded for this partner alone.
    """
    book = book if book is not None else await asyncio.to_thread(blind_book, keys, pad_to)
    if book.pad_to != pad_to:
        raise FeedError(f"the blinded book has {book.pad_to} points, expected pad_to={pad_to}")
    n = book.items.shape[0]
    await ctx.send(partner, "blinded", book.points.ravel())
    got = await ctx.recv(partner, "evaluated")
    if not isinstance(got, np.ndarray) or got.size != 32 * pad_to:
        raise FeedError(f"party {partner} answered {getattr(got, 'size', '?')} OPRF bytes, "
                        f"expected {32 * pad_to}")

    def unblind() -> npt.NDArray[np.uint8]:
        points = oprf.as_points(got.reshape(pad_to, 32)[:n], f"party {partner}'s evaluated")
        unblinded = oprf.multiply(book.inverses, points, f"party {partner}'s evaluated")
        return np.ascontiguousarray(oprf.finalize_many(book.items, unblinded))

    return await asyncio.to_thread(unblind)


async def open_books(ctxs: Mapping[str, Context], keys: Sequence[str] | pa.Array,
                     pad_to: int) -> dict[str, npt.NDArray[np.uint8]]:
    """Bank: F_P(k) of the book for every partner P (``ctxs``: P -> its set-up context).

    One hash-to-group and one blinding per key for all partners together, then
    per partner one unblinding (instead of a hash, a blinding and an
    unblinding per key and partner).
    """
    book = await asyncio.to_thread(blind_book, keys, pad_to)
    opened = await asyncio.gather(*(open_book(c, p, keys, pad_to, book)
                                    for p, c in ctxs.items()))
    return dict(zip(ctxs, opened, strict=True))


async def answer_book(ctx: Context, bank: str, key: oprf.OprfKey, pad_to: int) -> None:
    """Partner side of the set-up: evaluate the bank's ``pad_to`` blinded points."""
    got = await ctx.recv(bank, "blinded")
    if not isinstance(got, np.ndarray) or got.size != 32 * pad_to:
        raise FeedError(f"party {bank} sent {getattr(got, 'size', '?')} blinded bytes, "
                        f"expected {32 * pad_to}")
    evaluated = await asyncio.to_thread(key.evaluate_blinded_rows, got.reshape(pad_to, 32))
    await ctx.send(bank, "evaluated", evaluated.ravel())


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
