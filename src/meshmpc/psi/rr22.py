"""RR22 PSI: OPRF from one silent VOLE and an OKVS encoding of the receiver's set.

Paper: S. Raghuraman, P. Rindal, "Blazing Fast PSI from Improved OKVS and
Subfield VOLE", CCS 2022 (eprint 2022/320), the semi-honest protocol with a
full-field VOLE over GF(2^128). Security: semi-honest, static corruption;
silent VOLE per :mod:`meshmpc.ot.vole` (dual LPN, expand-accumulate code,
SoftSpokenOT base correlations); OKVS per :mod:`meshmpc.psi.okvs` (random band
matrix, BPSY23, in place of the paper's PaXoS); H(x) = fixed-key AES CCR hash
of the digest; H_out = the fixed-key AES CCR hash under its own public key (wire
version 2; version 1 used BLAKE2b), truncated to lambda + log2 nR + log2 nS bits.

Receiver R (set Y, VOLE receiver: A, C) and sender S (set X, VOLE sender:
delta, B) with C = B + A * delta over GF(2^128)^m, m = 1.1 |Y| + 128:
  set-up: the VOLE's SoftSpokenOT base OTs (once per job, reused by batches);
  VOLE:   the silent VOLE batch of m correlations (~0.5 MB at m = 2^20);
  R -> S: OKVS seed (16 bytes) and A' = P + A, P = Encode({(y, H(y))}) (16 m bytes);
  S -> R: {H_out(Decode(B + delta A', x) + delta H(x))} for x in X shuffled
          (t bytes each);
  R -> S: (reveal="all") positions of the matches in canonical order.
For y in Y, Decode(B + delta A', y) + delta H(y) = Decode(C, y): R compares
H_out(Decode(C, y)). R learns the intersection and |X|, S learns |Y| (and the
intersection when reveal="all"). Cardinality-only is refused as for KKRT: R
sees which of its own items matched. Bytes per item: ~17.6 (R) + t (S) plus
the VOLE. See protocols/psi-rr22.md.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.hashing import ccr_hash
from meshmpc.net import Context
from meshmpc.ot.vole import SilentVoleReceiver, SilentVoleSender
from meshmpc.progress import Phase, Progress
from meshmpc.psi import okvs
from meshmpc.psi.common import (
    PsiOutcome,
    Reveal,
    Stopwatch,
    chunks,
    random_permutation,
    received_positions,
    truncation_bytes,
)
from meshmpc.psi.errors import PsiError
from meshmpc.psi.keys import Digests

OUT_DOMAIN = b"meshmpc.rr22.out"
OUT_KEY = _core.aes128_expand(OUT_DOMAIN)
"""Round keys of H_out's fixed public AES key (16 bytes: OUT_DOMAIN itself)."""
SEND_ROWS = 1 << 18
U8 = npt.NDArray[np.uint8]


async def receiver_setup(ctx: Context, peer: str) -> SilentVoleReceiver:
    """The VOLE's base correlations (no input needed)."""
    return await SilentVoleReceiver.setup(ctx, peer, "rr22-vole")


async def sender_setup(ctx: Context, peer: str) -> SilentVoleSender:
    """The VOLE's base correlations and delta (no input needed)."""
    return await SilentVoleSender.setup(ctx, peer, "rr22-vole")


def gf_scale(a: U8, scalar: U8) -> U8:
    """a[i] * scalar over GF(2^128) for (n, 16) blocks."""
    out = np.empty_like(a)
    if len(a):
        _core.gf128_mul_into(np.ascontiguousarray(a), np.tile(scalar.reshape(1, 16), (len(a), 1)),
                             out)
    return out


def out_hash(values: U8, width: int) -> U8:
    """H_out(F(x)) truncated to ``width`` bytes: the fixed-key AES CCR hash
    pi_out(sigma(u)) + sigma(u) (Guo-Katz-Wang-Yu, S&P 2020) under the public key
    OUT_DOMAIN, a permutation apart from H's; why it suffices: protocols/psi-rr22.md."""
    full = np.empty_like(values)
    _core.ccr_hash_into(OUT_KEY, np.ascontiguousarray(values), full)
    return np.ascontiguousarray(full[:, :width])


async def _send_rows(ctx: Context, peer: str, tag: str, rows: U8, phase: Phase) -> None:
    with phase:
        for k, (s, e) in enumerate(chunks(len(rows), SEND_ROWS)):
            await ctx.send(peer, f"{tag}/{k}", np.ascontiguousarray(rows[s:e]))
            phase.advance(e - s)


async def _recv_rows(ctx: Context, peer: str, tag: str, n: int, width: int,
                     phase: Phase) -> U8:
    out = np.empty((n, width), dtype=np.uint8)
    with phase:
        for k, (s, e) in enumerate(chunks(n, SEND_ROWS)):
            part = np.asarray(await ctx.recv(peer, f"{tag}/{k}"), dtype=np.uint8)
            if part.shape != (e - s, width):
                raise PsiError(f"party {peer} sent an RR22 message of shape {part.shape} "
                               f"in {tag}")
            out[s:e] = part
            phase.advance(e - s)
    return out


def _in_batches(n: int, width: int, phase: Phase,
                compute: Callable[[int, int], U8]) -> U8:
    """``compute(start, stop)`` over batches of the n items, ticking ``phase``."""
    out = np.empty((n, width), dtype=np.uint8)
    with phase:
        for s, e in chunks(n, SEND_ROWS):
            out[s:e] = compute(s, e)
            phase.advance(e - s)
    return out


def _encode(digests: Digests) -> tuple[okvs.OkvsHash, U8]:
    """OKVS of the digests with values H(y): (hash, table). A repeated digest is a
    repeated equation with the same value, which the elimination skips (no dedup pass)."""
    digests = np.ascontiguousarray(digests)
    return okvs.encode(digests, ccr_hash(digests), okvs.table_size(len(digests)))


def match_order(values: U8) -> npt.NDArray[np.int64]:
    """Order of the matches R sends: by the first 64 bits of their OPRF values (a random
    order, independent of either party's input order). Only R computes it; S receives
    it, so ties (probability < n^2 2^-65) need no rule."""
    if len(values) == 0:
        return np.empty(0, np.int64)
    head = np.ascontiguousarray(values[:, :8]).view(">u8").reshape(-1)
    return np.argsort(head).astype(np.int64)


def _encode_timed(digests: Digests, phase: Phase) -> tuple[okvs.OkvsHash, U8]:
    with phase:  # one kernel call: the phase reports its rate when done
        return _encode(digests)


async def rr22_receiver(ctx: Context, peer: str, digests: Digests, peer_size: int,
                        reveal: Reveal, vole: SilentVoleReceiver | None = None,
                        progress: Progress | None = None) -> PsiOutcome:
    """Receiver side of RR22 PSI; returns the matches in canonical order."""
    progress = progress or Progress.off()
    n = len(digests)
    width = truncation_bytes(n, peer_size)
    watch = Stopwatch()
    encoding = asyncio.ensure_future(asyncio.to_thread(
        _encode_timed, digests, progress.phase("rr22: OKVS encoding", n, "keys")))
    vole = vole or await receiver_setup(ctx, peer)
    watch.lap("base_ot")
    m = okvs.table_size(n)
    with progress.phase("rr22: silent VOLE", m, "correlations"):
        a, c = await vole.extend(m, "vole")
    watch.lap("vole")
    okvs_hash, table = await encoding
    watch.lap("okvs_encode")
    await ctx.send(peer, "rr22/seed", okvs_hash.seed)
    np.bitwise_xor(table, a, out=table)
    await _send_rows(ctx, peer, "rr22/table", table,
                     progress.phase(f"rr22: sending the OKVS to {peer}", m, "rows"))
    del table, a
    watch.lap("send_table")
    values = await asyncio.to_thread(
        _in_batches, n, width, progress.phase("rr22: OPRF decoding", n, "keys"),
        lambda s, e: out_hash(okvs_hash.decode(c, digests[s:e]), width))
    watch.lap("decode")
    peer_values = await _recv_rows(ctx, peer, "rr22/values", peer_size, width,
                                   progress.phase(f"rr22: receiving {peer}'s OPRF values",
                                                  peer_size, "values"))
    watch.lap("wait_values")
    where = _core.psi_match(values, peer_values) if len(values) else np.empty(0, np.int64)
    hits = np.flatnonzero(where >= 0)
    watch.lap("match")
    if reveal == "cardinality":
        return PsiOutcome(None, len(hits), peer_size, watch.report(), vole)
    hits = hits[match_order(values[hits])]
    if reveal == "all":
        await ctx.send(peer, "rr22/result", where[hits])
    watch.lap("result")
    return PsiOutcome(hits.astype(np.int64), len(hits), peer_size, watch.report(), vole)


def _sender_values(okvs_hash: okvs.OkvsHash, table: U8, delta: U8, digests: Digests,
                   width: int) -> U8:
    """H_out(x, Decode(K, x) + delta H(x)) for every x."""
    decoded = okvs_hash.decode(table, digests)
    decoded ^= gf_scale(ccr_hash(digests), delta)
    return out_hash(decoded, width)


def _sender_batch(okvs_hash: okvs.OkvsHash, table: U8, delta: U8, digests: Digests,
                  width: int, start: int, stop: int) -> U8:
    """:func:`_sender_values` of the items start..stop."""
    return _sender_values(okvs_hash, table, delta, digests[start:stop], width)


async def rr22_sender(ctx: Context, peer: str, digests: Digests, peer_size: int,
                      reveal: Reveal, vole: SilentVoleSender | None = None,
                      progress: Progress | None = None) -> PsiOutcome:
    """Sender side of RR22 PSI: evaluates the OPRF on its items and sends them shuffled."""
    progress = progress or Progress.off()
    n = len(digests)
    width = truncation_bytes(peer_size, n)
    watch = Stopwatch()
    vole = vole or await sender_setup(ctx, peer)
    watch.lap("base_ot")
    m = okvs.table_size(peer_size)
    with progress.phase("rr22: silent VOLE", m, "correlations"):
        b = await vole.extend(m, "vole")
    watch.lap("vole")
    perm = random_permutation(n)
    shuffled = np.ascontiguousarray(digests[perm])
    seed = await ctx.recv(peer, "rr22/seed")
    if not isinstance(seed, bytes) or len(seed) != 16:
        raise PsiError(f"party {peer} sent an OKVS seed that is not 16 bytes")
    table = await _recv_rows(ctx, peer, "rr22/table", m, 16,
                             progress.phase(f"rr22: receiving {peer}'s OKVS", m, "rows"))
    watch.lap("wait_table")
    table = gf_scale(table, vole.delta) ^ b
    del b
    batch = functools.partial(_sender_batch, okvs.OkvsHash(seed, m), table, vole.delta,
                              shuffled, width)
    values = await asyncio.to_thread(_in_batches, n, width,
                                     progress.phase("rr22: OPRF values", n, "keys"), batch)
    del batch
    del table
    watch.lap("oprf_values")
    await _send_rows(ctx, peer, "rr22/values", values,
                     progress.phase(f"rr22: sending OPRF values to {peer}", n, "values"))
    watch.lap("send_values")
    if reveal != "all":
        return PsiOutcome(None, None, peer_size, watch.report(), vole)
    positions = received_positions(await ctx.recv(peer, "rr22/result"), n, peer)
    watch.lap("result")
    return PsiOutcome(perm[positions], len(positions), peer_size, watch.report(), vole)
