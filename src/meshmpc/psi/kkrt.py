"""KKRT16 PSI: batched OPRF from 1-out-of-N OT extension plus cuckoo hashing.

Paper: V. Kolesnikov, R. Kumaresan, M. Rosulek, N. Trieu, "Efficient Batched
Oblivious PRF with Applications to Private Set Intersection", CCS 2016
(eprint 2016/799). Semi-honest security, static corruption; 512 Chou-Orlandi
base OTs (meshmpc.ot.base) with roles reversed; AES-CTR PRG; the
pseudo-random code C(x) = AES_k1(x) || ... || AES_k4(x) (512 bits, keys drawn
by the sender); H = BLAKE2b-128 as the random oracle.

Receiver R (n items) cuckoo-hashes its digests with 3 hash functions into
~1.27n bins (public; rehashes with more bins in the rare case of a stash) and
runs one OT-extension instance per bin with code word C(x_b || j_b):
  R -> S: u (64 bytes per bin)                 [the KKRT extension matrix]
  S -> R: for j = 0, 1, 2: F(y || j) at bin h_j(y), for every y (Y shuffled)
          (t bytes each, t = ceil((40 + log2 nR + log2 nS) / 8))
  R -> S: (reveal="all") positions of the matches in canonical order, as
          indices into S's shuffled Y (the position modulo |Y|: which of
          the three hash functions matched depends on R's other items).
F_b(x) = H(q_b ^ (C(x) & s)) on the sender, H(t_b) on the receiver.
R learns the intersection and |Y|; S learns |X| (and the intersection when
reveal="all"). There is no cardinality-only mode: R matches its own bins, so
it always sees which of its items matched; both functions refuse
reveal="cardinality" (use ECDH PSI for that).
Bytes per item: ~81 from R (64 x 1.27), 3t from S. See protocols/psi-kkrt.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.hashing import item_hash
from meshmpc.net import Context
from meshmpc.ot.base import base_ot_receive, base_ot_send
from meshmpc.progress import Phase, Progress
from meshmpc.psi.common import (
    Indices,
    PsiOutcome,
    Reveal,
    Stopwatch,
    canonical_order,
    chunks,
    random_permutation,
    received_positions,
    truncation_bytes,
)
from meshmpc.psi.errors import PsiError
from meshmpc.psi.keys import Digests

CODE_BITS = 512
CODE_BYTES = CODE_BITS // 8
CHUNK_OTS = 1 << 17
BIN_FACTOR = 1.27
HASH_DOMAIN = b"meshmpc.kkrt.h1"
U8 = npt.NDArray[np.uint8]


def bin_count(n: int, attempt: int = 0) -> int:
    """Cuckoo bins for n items: 1.27n (PSSZ parameters), more for small sets and retries."""
    return int(max(BIN_FACTOR * n, 2 * n + 64) if n < 4096 else BIN_FACTOR * n) + attempt * (
        n // 10 + 16)


def _pad128(m: int) -> int:
    return max(128, (m + 127) // 128 * 128)


def tweak(digests: Digests, j: int) -> U8:
    """Item x || j as one block: word 3 of the digest xored with a constant per hash index."""
    out = np.array(digests, dtype=np.uint8, copy=True).reshape(-1, 16)
    out.view("<u4")[:, 3] ^= np.uint32((0x9E3779B9 * (j + 1)) & 0xFFFFFFFF)
    return out


def code_keys(seed: bytes) -> U8:
    """Round keys of the four AES keys of the pseudo-random code, from the sender's seed."""
    keys = [hashlib.blake2b(seed + bytes([i]), digest_size=16).digest() for i in range(4)]
    return _core.aes128_expand_many(np.frombuffer(b"".join(keys), np.uint8).reshape(4, 16))


def codewords(round_keys: U8, blocks: U8) -> U8:
    """C(x) for each 16-byte block: four AES encryptions side by side, (n, 64) uint8."""
    out = np.empty((len(blocks), CODE_BYTES), dtype=np.uint8)
    tmp = np.empty((len(blocks), 16), dtype=np.uint8)
    for i in range(4):
        _core.aes128_ecb_into(round_keys[i], blocks, tmp)
        out[:, 16 * i : 16 * (i + 1)] = tmp
    return out


def oprf_hash(rows: U8, width: int) -> U8:
    """H(row) truncated to ``width`` bytes for 64-byte rows."""
    digests = item_hash(np.ascontiguousarray(rows), domain=HASH_DOMAIN)
    return np.ascontiguousarray(digests[:, :width])


def cuckoo(digests: Digests) -> tuple[int, npt.NDArray[np.int64], U8]:
    """Place the receiver's digests: (bins, table, which), retrying until no stash."""
    for attempt in range(8):
        nbins = bin_count(len(digests), attempt)
        table, which, stash = _core.psi_cuckoo_insert(digests, nbins)
        if len(stash) == 0:
            return nbins, table, which
    raise PsiError(f"cuckoo hashing of {len(digests)} items failed 8 times (duplicate digests?)")


SEND_ROWS = 1 << 18


async def _send_rows(ctx: Context, peer: str, tag: str, rows: U8, phase: Phase) -> None:
    with phase:
        for k, (s, e) in enumerate(chunks(len(rows), SEND_ROWS)):
            await ctx.send(peer, f"{tag}/{k}", np.ascontiguousarray(rows[s:e]))
            phase.advance(e - s)


async def _recv_rows(ctx: Context, peer: str, tag: str, n: int, width: int,
                     phase: Phase) -> U8:
    parts = []
    with phase:
        for k, (s, e) in enumerate(chunks(n, SEND_ROWS)):
            part = np.asarray(await ctx.recv(peer, f"{tag}/{k}"), dtype=np.uint8)
            if part.shape != (e - s, width):
                raise PsiError(f"party {peer} sent a KKRT message of shape {part.shape} in {tag}")
            parts.append(part)
            phase.advance(e - s)
    return np.concatenate(parts) if parts else np.empty((0, width), np.uint8)


def _hash_rows(rows: U8, width: int, phase: Phase) -> U8:
    """:func:`oprf_hash` of every row, in batches so that ``phase`` shows the rate."""
    out = np.empty((len(rows), width), dtype=np.uint8)
    with phase:
        for s, e in chunks(len(rows), SEND_ROWS):
            out[s:e] = oprf_hash(rows[s:e], width)
            phase.advance(e - s)
    return out


def _bin_blocks(digests: Digests, m: int, table: Indices, which: U8) -> U8:
    """The OPRF input of every bin: x || j for an occupied bin, zero for an empty one.

    An empty bin's output is never compared, and u hides every code word behind
    the PRG, so its filler needs no randomness.
    """
    blocks = np.zeros((m, 16), dtype=np.uint8)
    occupied = np.flatnonzero(table >= 0)
    for j in range(3):
        sel = occupied[which[occupied] == j]
        blocks[sel] = tweak(digests[table[sel]], j)
    return blocks


@dataclass
class KkrtKeys:
    """One party's KKRT set-up, reused by every batch (bucket) of a job.

    Receiver: round keys of both base-OT seeds per column (rk0, rk1); sender:
    the seeds it chose (rks) and its 512-bit s. ``ctr`` is the next PRG block
    counter: batches use disjoint counter ranges, so reusing the base OTs is
    the same as one long extension.
    """

    code_rk: U8
    rk0: U8 = field(default_factory=lambda: np.empty(0, np.uint8))
    rk1: U8 = field(default_factory=lambda: np.empty(0, np.uint8))
    rks: U8 = field(default_factory=lambda: np.empty(0, np.uint8))
    s: U8 = field(default_factory=lambda: np.empty(0, np.uint8))
    ctr: int = 0


async def receiver_setup(ctx: Context, peer: str) -> KkrtKeys:
    """Base OTs (as their sender) and the code keys the sender draws."""
    k0, k1 = await base_ot_send(ctx, peer, CODE_BITS, tag="kkrt/base")
    code_rk = code_keys(bytes(await ctx.recv(peer, "kkrt/code")))
    return KkrtKeys(code_rk, rk0=_core.aes128_expand_many(k0), rk1=_core.aes128_expand_many(k1))


async def sender_setup(ctx: Context, peer: str) -> KkrtKeys:
    """Base OTs (as their receiver, choice bits s) and fresh code keys."""
    s_bits = np.unpackbits(np.frombuffer(os.urandom(CODE_BYTES), np.uint8), bitorder="little")
    ks = await base_ot_receive(ctx, peer, s_bits, tag="kkrt/base")
    seed = os.urandom(16)
    await ctx.send(peer, "kkrt/code", seed)
    return KkrtKeys(code_keys(seed), rks=_core.aes128_expand_many(ks),
                    s=np.packbits(s_bits, bitorder="little"))


def _place(digests: Digests) -> tuple[int, Indices, U8, U8]:
    nbins, table, which = cuckoo(digests)
    return nbins, table, which, _bin_blocks(digests, _pad128(nbins), table, which)


async def _extend_receiver(ctx: Context, peer: str, blocks: U8, keys: KkrtKeys,
                           phase: Phase) -> U8:
    """Run the KKRT extension as its receiver; returns t rows (m, 64)."""
    m = len(blocks)
    t_rows = np.empty((m, CODE_BYTES), dtype=np.uint8)
    for start, stop in chunks(m, CHUNK_OTS):
        w = stop - start
        codes = codewords(keys.code_rk, blocks[start:stop])
        cols = np.empty((CODE_BITS, w // 8), dtype=np.uint8)
        _core.transpose_into(codes, cols, w, CODE_BITS)
        u = np.empty((CODE_BITS, w // 8), dtype=np.uint8)
        await asyncio.to_thread(_core.ext_receiver_into, keys.rk0, keys.rk1,
                                keys.ctr + start // 128, cols, False, u, t_rows[start:stop])
        await ctx.send(peer, f"kkrt/u/{start}", u)
        phase.advance(w)
    keys.ctr += m // 128
    phase.finish()
    return t_rows


async def kkrt_receiver(ctx: Context, peer: str, digests: Digests, peer_size: int,
                        reveal: Reveal, keys: KkrtKeys | None = None,
                        progress: Progress | None = None) -> PsiOutcome:
    """Receiver side of KKRT16 PSI; returns the matches in canonical order.

    ``keys`` from an earlier batch skips the base OTs; the outcome's ``keys``
    attribute carries them to the next batch. Refuses reveal="cardinality".
    """
    _refuse_cardinality(ctx, reveal)
    progress = progress or Progress.off()
    width = truncation_bytes(len(digests), 3 * peer_size)
    watch = Stopwatch()
    placing = asyncio.ensure_future(asyncio.to_thread(_place, digests))
    keys = keys or await receiver_setup(ctx, peer)
    watch.lap("base_ot")
    nbins, table, which, blocks = await placing
    watch.lap("cuckoo")
    await ctx.send(peer, "kkrt/bins", nbins)
    t_rows = await _extend_receiver(ctx, peer, blocks, keys,
                                    progress.phase("kkrt: OT extension", len(blocks), "bins"))
    watch.lap("extension")
    occupied = np.flatnonzero(table >= 0)
    hashing = progress.phase("kkrt: OPRF hashing", len(t_rows), "bins")
    values = (await asyncio.to_thread(_hash_rows, t_rows, width, hashing))[occupied]
    del t_rows
    watch.lap("oprf_hash")
    peer_values = await _recv_rows(ctx, peer, "kkrt/values", 3 * peer_size, width,
                                   progress.phase(f"kkrt: receiving {peer}'s OPRF values",
                                                  3 * peer_size, "values"))
    watch.lap("wait_values")
    where = _core.psi_match(values, peer_values) if len(values) else np.empty(0, np.int64)
    hits = np.flatnonzero(where >= 0)
    watch.lap("match")
    hits = hits[canonical_order(values[hits])]
    if reveal == "all":
        await ctx.send(peer, "kkrt/result", where[hits] % max(peer_size, 1))
    watch.lap("result")
    return PsiOutcome(table[occupied[hits]].astype(np.int64), len(hits), peer_size, watch.steps,
                      keys)


async def _extend_sender(ctx: Context, peer: str, m: int, keys: KkrtKeys, phase: Phase) -> U8:
    """Run the KKRT extension as its sender; returns q rows (m, 64)."""
    q = np.empty((m, CODE_BYTES), dtype=np.uint8)
    for start, stop in chunks(m, CHUNK_OTS):
        u = np.asarray(await ctx.recv(peer, f"kkrt/u/{start}"), dtype=np.uint8)
        if u.nbytes != CODE_BITS * (stop - start) // 8:
            raise PsiError(f"party {peer} sent a KKRT extension matrix of {u.nbytes} bytes")
        await asyncio.to_thread(_core.ext_sender_into, keys.rks, keys.s, keys.ctr + start // 128,
                                u, q[start:stop])
        phase.advance(stop - start)
    keys.ctr += m // 128
    phase.finish()
    return q


def _in_two_threads(work: list[tuple[int, int, int]], fn: Callable[[int, int, int], None]) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        for job in [pool.submit(fn, *w) for w in work]:
            job.result()


def _masked_codes(keys: KkrtKeys, digests: Digests, phase: Phase) -> U8:
    """C(y || j) & s for every y and j = 0, 1, 2 (j-major), before q is known."""
    n = len(digests)
    out = np.empty((3 * n, CODE_BYTES), dtype=np.uint8)

    def one(j: int, lo: int, hi: int) -> None:
        out[j * n + lo : j * n + hi] = codewords(keys.code_rk, tweak(digests[lo:hi], j)) & keys.s
        phase.advance(hi - lo)

    with phase:
        _in_two_threads([(j, lo, hi) for j in range(3) for lo, hi in chunks(n, SEND_ROWS)], one)
    return out


def _sender_values(q: U8, masked: U8, digests: Digests, nbins: int, width: int,
                   phase: Phase) -> U8:
    """F(y || j) = H(q[h_j(y)] ^ (C(y || j) & s)) for j = 0, 1, 2 (j-major)."""
    n = len(digests)
    bins = _core.psi_cuckoo_bins(digests, nbins)
    out = np.empty((3 * n, width), dtype=np.uint8)

    def one(j: int, lo: int, hi: int) -> None:
        rows = q[bins[lo:hi, j]] ^ masked[j * n + lo : j * n + hi]
        out[j * n + lo : j * n + hi] = oprf_hash(rows, width)
        phase.advance(hi - lo)

    with phase:
        _in_two_threads([(j, lo, hi) for j in range(3) for lo, hi in chunks(n, SEND_ROWS)], one)
    return out


async def kkrt_sender(ctx: Context, peer: str, digests: Digests, peer_size: int,
                      reveal: Reveal, keys: KkrtKeys | None = None,
                      progress: Progress | None = None) -> PsiOutcome:
    """Sender side of KKRT16 PSI: evaluates the OPRF on its items and sends them shuffled."""
    _refuse_cardinality(ctx, reveal)
    progress = progress or Progress.off()
    n = len(digests)
    width = truncation_bytes(peer_size, 3 * n)
    watch = Stopwatch()
    keys = keys or await sender_setup(ctx, peer)
    watch.lap("base_ot")
    perm = random_permutation(n)
    shuffled = np.ascontiguousarray(digests[perm])
    masking = asyncio.ensure_future(asyncio.to_thread(
        _masked_codes, keys, shuffled, progress.phase("kkrt: code words", 3 * n, "values")))
    nbins = int(await ctx.recv(peer, "kkrt/bins"))
    if not 0 < nbins <= 4 * peer_size + 10_000:
        raise PsiError(f"party {peer} announced {nbins} cuckoo bins for {peer_size} items")
    watch.lap("wait_bins")
    m = _pad128(nbins)
    q = await _extend_sender(ctx, peer, m, keys, progress.phase("kkrt: OT extension", m, "bins"))
    watch.lap("extension")
    masked = await masking
    watch.lap("wait_codes")
    values = await asyncio.to_thread(_sender_values, q, masked, shuffled, nbins, width,
                                     progress.phase("kkrt: OPRF values", 3 * n, "values"))
    del q, masked
    watch.lap("oprf_values")
    await _send_rows(ctx, peer, "kkrt/values", values,
                     progress.phase(f"kkrt: sending OPRF values to {peer}", 3 * n, "values"))
    watch.lap("send_values")
    if reveal != "all":
        return PsiOutcome(None, None, peer_size, watch.steps, keys)
    positions = received_positions(await ctx.recv(peer, "kkrt/result"), n, peer)
    watch.lap("result")
    return PsiOutcome(perm[positions], len(positions), peer_size, watch.steps, keys)


def _refuse_cardinality(ctx: Context, reveal: Reveal) -> None:
    if reveal == "cardinality":
        raise PsiError(f"party {ctx.party}: KKRT PSI cannot reveal only the cardinality (the "
                       "receiver sees which of its own items matched); use protocol 'ecdh'")
