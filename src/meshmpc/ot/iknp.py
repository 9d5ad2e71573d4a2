"""IKNP OT extension: correlated OT with a global delta, random OT, chosen-message OT.

Paper: Y. Ishai, J. Kilian, K. Nissim, E. Petrank, "Extending Oblivious
Transfers Efficiently", CRYPTO 2003; hashing per Guo-Katz-Wang-Yu (S&P 2020).
Security: semi-honest, static corruption; base OTs per :mod:`meshmpc.ot.base`;
AES-CTR as the PRG G; the tweakable correlation-robust hash H(j, x).

Set-up (once per direction): 128 base OTs with the roles reversed. The
extension receiver holds seed pairs (k0_i, k1_i); the extension sender holds
k_{s_i} for its random 128-bit delta s.

Each batch of m OTs (m rounded up to 128), one message receiver -> sender:
  u^i = G(k0_i) ^ G(k1_i) ^ r     (128 x m bits = 16 bytes per OT)
Outputs (rows after a bit transpose, all work in C):
  receiver t_j = rows of G(k0_i);  sender q_j = rows of G(k_{s_i}) ^ s_i u^i,
  so that t_j = q_j ^ r_j * delta   (correlated OT, "COT").
Random OT hashes: sender (H(j, q_j), H(j, q_j ^ delta)), receiver H(j, t_j).
Chosen-message OT adds one message sender -> receiver of 32 bytes per OT.

Pre-computation: ``prefill(n)`` on both ends extends n random COTs ahead of
time into a stock; later ``cot`` / ``rot`` / ``send`` calls of at most the
stocked size consume it and only send the derandomisation bits
d = choices ^ stocked choices (1 bit per OT, Beaver's trick), so the online
phase costs n / 8 bytes instead of 16 n.

Both parties must call matching methods in the same order on a direction
(one Sender object at one party, the Receiver at the other); each call is one
batch, and its tags are numbered so independent directions never mix. Calls
on one object are serialised by a lock, so concurrent coroutines cannot mix
PRG positions; their order must still match across the two parties.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.aes import FIXED_KEY_AES
from meshmpc.crypto.bits import select_rows, xor_where
from meshmpc.crypto.hashing import tccr_hash
from meshmpc.crypto.prg import Prg
from meshmpc.net.context import Context
from meshmpc.ot.base import base_ot_receive, base_ot_send
from meshmpc.ot.errors import OtInputError, OtProtocolError

KAPPA = 128
CHUNK_OTS = 1 << 17
"""OTs per wire message: 2 MiB of u per chunk keeps memory flat and lets the
two parties overlap computing one chunk with sending the next."""

RING_SLOTS = 3
"""Chunk buffers of a streamed extension (one with a consumer per chunk): the chunk being
filled, the one the consumer still holds (the Gilboa receiver finishes chunk c after
c + 1 went out) and one spare, so a batch of any size needs 3 x 2 MiB of rows."""

GILBOA_TAG = "gilboa-ccr"
"""Message tag (and wire version) of the fused Gilboa products: "-ccr" since their pads
are the circular CR hash H(x) (one AES call) instead of H(j, x); a peer on the older
tweakable-hash messages waits on another tag instead of computing wrong products."""

SCRATCH_ROWS = 1 << 21
"""Largest batch (in OTs, 32 MiB of rows) served from a direction's reused buffer."""

U8 = npt.NDArray[np.uint8]
T = TypeVar("T")
EachChunk = Callable[[int, U8], Awaitable[None]] | None
"""Called with (first OT index, rows) as each chunk of an extension is ready, so a
consumer can hash it while it is still in cache and the peer works on the next."""


def _pad128(n: int) -> int:
    return (n + 127) // 128 * 128


def _choice_bits(choices: npt.ArrayLike) -> U8:
    bits = np.ascontiguousarray(choices, dtype=np.uint8).reshape(-1)
    if bits.size and bits.max() > 1:
        raise OtInputError("OT choice bits must be 0 or 1")
    return bits


def _blocks(data: npt.ArrayLike, n: int, name: str) -> U8:
    arr = np.ascontiguousarray(data)
    if arr.nbytes != 16 * n:
        raise OtInputError(f"{name}: expected {n} messages of 16 bytes, got {arr.nbytes} bytes")
    return arr.view(np.uint8).reshape(n, 16)


def _words(x: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    arr = np.asarray(x)
    if arr.dtype != np.uint64 or arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] > 2):
        raise OtInputError("correlated OT inputs must be uint64 of shape (n,) or (n, w<=2)")
    return arr.reshape(arr.shape[0], -1)


def chunk_rows(buf: U8, start: int, total: int, streamed: bool) -> U8:
    """Rows [start, start + CHUNK_OTS) of an extension of ``total`` (padded) rows held in
    ``buf``: a slot of the ring when ``streamed`` (see _Direction.rows_buffer)."""
    count = min(CHUNK_OTS, total - start)
    if not streamed:
        return buf[start : start + count]
    slot = (start // CHUNK_OTS) % RING_SLOTS * CHUNK_OTS
    return buf[slot : slot + count]


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a GIL-free C call off the event loop so the mesh can keep flushing."""
    return await asyncio.to_thread(fn, *args)


class _Stock:
    """FIFO of pre-computed rows (several parallel arrays), taken in order."""

    def __init__(self) -> None:
        self._parts: deque[tuple[np.ndarray, ...]] = deque()
        self.size = 0

    def put(self, *arrays: np.ndarray) -> None:
        self._parts.append(arrays)
        self.size += arrays[0].shape[0]

    def take(self, n: int) -> tuple[np.ndarray, ...]:
        taken: list[tuple[np.ndarray, ...]] = []
        need = n
        while need:
            part = self._parts[0]
            k = min(need, part[0].shape[0])
            taken.append(tuple(a[:k] for a in part))
            if k == part[0].shape[0]:
                self._parts.popleft()
            else:
                self._parts[0] = tuple(a[k:] for a in part)
            need -= k
        self.size -= n
        return tuple(np.concatenate(cols) for cols in zip(*taken, strict=True))


class _Direction:
    """State shared by both ends of one direction: context, peer, counters, stock."""

    def __init__(self, ctx: Context, peer: str, name: str, prg: Prg | None) -> None:
        self.ctx = ctx.scope(name)
        self.peer = peer
        self.prg = prg or Prg()
        self.block_counter = 0  # PRG position of every column (in 128-OT blocks)
        self.hash_counter = 0  # OTs hashed so far: the tweak of the next hash
        self.lock = asyncio.Lock()
        self.stock = _Stock()
        self._batch = 0
        self._scratch: U8 | None = None
        self._ring: U8 | None = None

    def rows_buffer(self, n: int, reuse: bool, streamed: bool = False) -> U8:
        """(pad128(n), 16) rows for an extension. With ``reuse`` (the caller consumes
        them before it releases the lock) one buffer per direction serves every batch
        up to SCRATCH_ROWS, so the kernel need not zero fresh pages each time.
        ``streamed`` (a consumer takes every chunk as it is ready, nothing is returned):
        the direction's ring of RING_SLOTS chunks, whatever n; see :func:`chunk_rows`."""
        rows = _pad128(n)
        if streamed:
            if self._ring is None:
                self._ring = np.empty((RING_SLOTS * CHUNK_OTS, 16), dtype=np.uint8)
            return self._ring
        if not reuse or rows > SCRATCH_ROWS:
            return np.empty((rows, 16), dtype=np.uint8)
        if self._scratch is None or self._scratch.shape[0] < rows:
            self._scratch = np.empty((rows, 16), dtype=np.uint8)
        return self._scratch[:rows]

    def next_tag(self, what: str) -> str:
        self._batch += 1
        return f"{what}/{self._batch}"

    def next_tweak(self, n: int) -> int:
        start = self.hash_counter
        self.hash_counter += n
        return start

    @property
    def stocked(self) -> int:
        """Pre-computed random COTs not yet consumed."""
        return self.stock.size


class CotSender(_Direction):
    """Extension sender of one direction: holds delta, gets q_j with t_j = q_j ^ r_j delta."""

    delta: U8
    _round_keys: U8

    @classmethod
    async def setup(
        cls, ctx: Context, peer: str, prg: Prg | None = None, name: str = "iknp"
    ) -> CotSender:
        """Run the 128 base OTs (as their receiver) with ``peer``."""
        self = cls(ctx, peer, name, prg)
        s_bits = self.prg.bits(KAPPA)
        keys = await base_ot_receive(self.ctx, peer, s_bits, self.prg.fork())
        self.delta = np.packbits(s_bits, bitorder="little")
        self._round_keys = _core.aes128_expand_many(keys)
        return self

    async def _extend(self, n: int, tag: str, reuse: bool = False, each: EachChunk = None) -> U8:
        """q for n OTs; with ``each`` streamed through the ring (returns no rows)."""
        streamed, total = each is not None, _pad128(n)
        q = self.rows_buffer(n, reuse, streamed)
        for start in range(0, total, CHUNK_OTS):
            rows = chunk_rows(q, start, total, streamed)
            u = await self.ctx.recv(self.peer, f"{tag}/{start}")
            if not isinstance(u, np.ndarray) or u.nbytes != rows.shape[0] * 16:
                raise OtProtocolError(self.peer, f"OT extension matrix of wrong size in {tag}")
            await _in_thread(
                _core.ext_sender_into, self._round_keys, self.delta, self.block_counter, u, rows
            )
            self.block_counter += rows.shape[0] // 128
            if each is not None:
                await each(start, rows[: max(0, n - start)])
        return q[:n]

    async def prefill(self, n: int) -> None:
        """Pre-compute n random COTs into the stock (the receiver calls prefill(n) too)."""
        async with self.lock:
            self.stock.put(await self._extend(n, self.next_tag("fill")))

    async def cot(self, n: int) -> U8:
        """n correlated OTs: returns q (n, 16); the receiver's t_j = q_j ^ r_j * delta."""
        async with self.lock:
            return await self._cot(n)

    async def _cot(self, n: int, reuse: bool = False, each: EachChunk = None) -> U8:
        tag = self.next_tag("cot")
        if not 0 < n <= self.stock.size:
            return await self._extend(n, tag, reuse, each)
        (q,) = self.stock.take(n)
        flips = await self.ctx.recv(self.peer, tag)
        if not isinstance(flips, np.ndarray) or flips.nbytes != (n + 7) // 8:
            raise OtProtocolError(self.peer, f"derandomisation bits of wrong size in {tag}")
        xor_where(flips, self.delta, q)
        if each is not None:
            await each(0, q)
        return q

    async def rot(self, n: int) -> tuple[U8, U8]:
        """n random OTs: returns (m0, m1), each (n, 16); the receiver gets m_{r_j}."""
        async with self.lock:
            pads = await self._random_pads(n)
        return pads[:n], pads[n:]

    async def _random_pads(self, n: int) -> U8:
        """(2n, 16): H(j, q_j) for the first n rows, H(j, q_j ^ delta) for the rest."""
        q = await self._cot(n)
        tweak = self.next_tweak(n)
        pads = np.empty((2 * n, 16), dtype=np.uint8)
        tccr_hash(q, tweak, out=pads[:n])
        np.bitwise_xor(q, self.delta, out=q)
        tccr_hash(q, tweak, out=pads[n:])
        return pads

    async def rot_low(self, n: int, width: int) -> tuple[U8, U8]:
        """The pads of :meth:`rot` trimmed to their low ``width`` bytes: (m0, m1), each
        (n, width). Hashed in C off the event loop, without the 32-byte pad pairs;
        the receiver calls :meth:`CotReceiver.rot_low` with its choices."""
        async with self.lock:
            return await self._low_pads(n, width)

    async def _low_pads(self, n: int, width: int) -> tuple[U8, U8]:
        """Under the lock: n fresh COTs hashed into trimmed pad pairs (see rot_low)."""
        out0, out1 = (np.empty((n, width), dtype=np.uint8) for _ in range(2))
        q = await self._cot(n, reuse=True)
        tweak = self.next_tweak(n)
        await _in_thread(_core.cot_low_send, FIXED_KEY_AES.round_keys, tweak, q, self.delta,
                         out0, out1)
        return out0, out1

    async def send(self, m0: npt.ArrayLike, m1: npt.ArrayLike) -> None:
        """Chosen-message OT of 16-byte messages: the receiver learns m0[j] or m1[j]."""
        n = np.asarray(m0).nbytes // 16
        x0, x1 = _blocks(m0, n, "m0"), _blocks(m1, n, "m1")
        async with self.lock:
            tag = self.next_tag("chosen")
            masked = await self._random_pads(n)
            np.bitwise_xor(masked[:n], x0, out=masked[:n])
            np.bitwise_xor(masked[n:], x1, out=masked[n:])
            await self.ctx.send(self.peer, tag, masked)

    async def send_correlated(self, x: npt.ArrayLike) -> npt.NDArray[np.uint64]:
        """Arithmetic correlated OT over Z_2^64 (Gilboa): the receiver gets a + b_j x_j.

        ``x`` is uint64 of shape (n,) or (n, w) with w <= 2; returns a with the
        same shape. Costs the random OTs plus 8 w bytes per OT sender -> receiver.
        """
        words = _words(x)
        n, w = words.shape
        async with self.lock:
            tag = self.next_tag("acot")
            m0, m1 = await self._low_pads(n, 8 * w)
            a = m0.view(np.uint64)
            await self.ctx.send(self.peer, tag, a - m1.view(np.uint64) + words)
        return a.reshape(np.shape(x))

    async def send_gilboa(self, a: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        """Sender of Gilboa products a_j * b_j: 64 correlated OTs per element, the
        receiver choosing with the bits of b_j.

        The random-OT hash and the correction run fused in C off the event loop,
        one extension chunk at a time as it is ready (so the rows are hashed while
        in cache and the receiver extends the next chunk meanwhile); OT k carries
        only the 64 - k bits its product needs (8 - k // 8 bytes, 288 bytes per
        element instead of 512). Returns this party's share -sum_k H(q)_low 2^k of
        every product (the receiver's :meth:`CotReceiver.receive_gilboa` holds the rest).
        """
        a = np.ascontiguousarray(a, dtype=np.uint64).reshape(-1)
        n = 64 * a.size
        share = np.empty(a.size, dtype=np.uint64)
        async with self.lock:
            tag = self.next_tag(GILBOA_TAG)

            async def each(start: int, rows: U8) -> None:
                first, stop = start // 64, (start + rows.shape[0]) // 64
                corr = np.empty(_core.gilboa_packed_bytes(stop - first), dtype=np.uint8)
                await _in_thread(_core.gilboa_cot_send, FIXED_KEY_AES.round_keys,
                                 rows, self.delta, a[first:stop], corr, share[first:stop])
                await self.ctx.send(self.peer, f"{tag}/{start}", corr)

            await self._cot(n, reuse=True, each=each)
        return share


class CotReceiver(_Direction):
    """Extension receiver of one direction: chooses r_j, gets t_j = q_j ^ r_j delta."""

    _round_keys0: U8
    _round_keys1: U8

    @classmethod
    async def setup(
        cls, ctx: Context, peer: str, prg: Prg | None = None, name: str = "iknp"
    ) -> CotReceiver:
        """Run the 128 base OTs (as their sender) with ``peer``."""
        self = cls(ctx, peer, name, prg)
        k0, k1 = await base_ot_send(self.ctx, peer, KAPPA, self.prg.fork())
        self._round_keys0 = _core.aes128_expand_many(k0)
        self._round_keys1 = _core.aes128_expand_many(k1)
        return self

    async def _extend(self, bits: U8, tag: str, reuse: bool = False,
                      each: EachChunk = None) -> U8:
        n = bits.size
        padded = np.concatenate([bits, self.prg.bits(_pad128(n) - n)])
        return await self._extend_packed(np.packbits(padded, bitorder="little"), n, tag,
                                         reuse, each)

    async def _extend_packed(self, packed: U8, n: int, tag: str, reuse: bool = False,
                             each: EachChunk = None) -> U8:
        """The extension for choice bits packed little-endian, pad128(n) of them; with
        ``each`` streamed through the ring (returns no rows)."""
        streamed, total = each is not None, _pad128(n)
        t = self.rows_buffer(n, reuse, streamed)
        for start in range(0, total, CHUNK_OTS):
            rows = chunk_rows(t, start, total, streamed)
            r = packed[start // 8 : (start + rows.shape[0]) // 8]
            correction = await self._extend_chunk(r, rows)
            self.block_counter += rows.shape[0] // 128
            await self.ctx.send(self.peer, f"{tag}/{start}", correction)
            if each is not None:
                await each(start, rows[: max(0, n - start)])
        return t[:0] if streamed else t[:n]

    async def _extend_chunk(self, r: U8, rows: U8) -> U8:
        """Fill ``rows`` with t for the packed choice bits ``r``; return the sender's
        correction (IKNP: u, KAPPA rows of one bit per OT). Engines override this."""
        u = np.empty((KAPPA, r.size), dtype=np.uint8)
        await _in_thread(
            _core.ext_receiver_into, self._round_keys0, self._round_keys1,
            self.block_counter, r, True, u, rows,
        )
        return u

    async def prefill(self, n: int) -> None:
        """Pre-compute n random COTs into the stock (the sender calls prefill(n) too)."""
        async with self.lock:
            bits = self.prg.bits(n)
            self.stock.put(bits, await self._extend(bits, self.next_tag("fill")))

    async def cot(self, choices: npt.ArrayLike) -> U8:
        """Correlated OTs with the given choice bits (0/1); returns t (n, 16)."""
        bits = _choice_bits(choices)
        async with self.lock:
            return await self._cot(bits)

    async def _cot(self, bits: U8, reuse: bool = False, each: EachChunk = None) -> U8:
        tag = self.next_tag("cot")
        n = bits.size
        if not 0 < n <= self.stock.size:
            return await self._extend(bits, tag, reuse, each)
        stocked_bits, t = self.stock.take(n)
        await self.ctx.send(self.peer, tag, np.packbits(bits ^ stocked_bits, bitorder="little"))
        if each is not None:
            await each(0, t)
        return t

    async def random_cot(self, n: int) -> tuple[U8, U8]:
        """n correlated OTs with random choices; returns (choices 0/1 (n,), t (n, 16))."""
        bits = self.prg.bits(n)
        return bits, await self.cot(bits)

    async def rot(self, choices: npt.ArrayLike | int) -> tuple[U8, U8]:
        """Random OTs; ``choices`` 0/1 bits or a count (random choices).

        Returns (choices, m) with m[j] = the sender's m_{choices[j]}[j].
        """
        bits = self.prg.bits(choices) if isinstance(choices, int) else _choice_bits(choices)
        async with self.lock:
            return bits, await self._rot(bits)

    async def _rot(self, bits: U8) -> U8:
        t = await self._cot(bits)
        return tccr_hash(t, self.next_tweak(bits.size), out=t)

    async def rot_low(self, choices: npt.ArrayLike, width: int) -> tuple[U8, U8]:
        """Receiver of :meth:`CotSender.rot_low`: (choices, m) with m (n, width) the low
        bytes of the sender's m_{choices[j]}."""
        bits = _choice_bits(choices)
        async with self.lock:
            return bits, await self._low_pads(bits, width)

    async def _low_pads(self, bits: U8, width: int) -> U8:
        """Under the lock: COTs with these choices hashed into trimmed pads (rot_low)."""
        out = np.empty((bits.size, width), dtype=np.uint8)
        t = await self._cot(bits, reuse=True)
        tweak = self.next_tweak(bits.size)
        await _in_thread(_core.cot_low_recv, FIXED_KEY_AES.round_keys, tweak, t, out)
        return out

    async def receive_correlated(
        self, choices: npt.ArrayLike, width: int = 1
    ) -> npt.NDArray[np.uint64]:
        """Receiver of :meth:`CotSender.send_correlated`: a_j + b_j x_j mod 2^64.

        Returns shape (n,) for width 1, else (n, width).
        """
        if width not in (1, 2):
            raise OtInputError(f"correlated OT width must be 1 or 2 words, got {width}")
        bits = _choice_bits(choices)
        async with self.lock:
            tag = self.next_tag("acot")
            pads = await self._low_pads(bits, 8 * width)
            d = await self.ctx.recv(self.peer, tag)
        n = bits.size
        if not isinstance(d, np.ndarray) or d.dtype != np.uint64 or d.size != n * width:
            raise OtProtocolError(self.peer, f"correlated-OT corrections of wrong size in {tag}")
        scale = bits.astype(np.uint64)[:, None]
        corrections = np.multiply(d.reshape(n, width), scale, dtype=np.uint64)
        out = np.add(pads.view(np.uint64), corrections, dtype=np.uint64)
        return out.reshape(n) if width == 1 else out

    async def receive_gilboa(self, b: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        """Receiver of :meth:`CotSender.send_gilboa`: chooses with the 64 bits of each b_j
        and returns its share of every a_j * b_j. Chunk c is finished after chunk
        c + 1's extension went out, so the sender's corrections for c are under way."""
        b = np.ascontiguousarray(b, dtype=np.uint64).reshape(-1)
        n = 64 * b.size
        share = np.empty(b.size, dtype=np.uint64)
        pending: list[tuple[int, U8]] = []
        async with self.lock:
            tag = self.next_tag(GILBOA_TAG)

            async def finish(start: int, rows: U8) -> None:
                first, stop = start // 64, (start + rows.shape[0]) // 64
                corr = await self.ctx.recv(self.peer, f"{tag}/{start}")
                if (not isinstance(corr, np.ndarray) or corr.dtype != np.uint8
                        or corr.size != _core.gilboa_packed_bytes(stop - first)):
                    raise OtProtocolError(self.peer,
                                          f"Gilboa corrections of wrong size in {tag}")
                await _in_thread(_core.gilboa_cot_recv, FIXED_KEY_AES.round_keys,
                                 rows, b[first:stop], np.ascontiguousarray(corr),
                                 share[first:stop])

            async def each(start: int, rows: U8) -> None:
                pending.append((start, rows))
                if len(pending) > 1:
                    await finish(*pending.pop(0))

            if n % 128 == 0 and not 0 < n <= self.stock.size:
                # b's words are its choice bits already packed: no per-bit arrays
                await self._extend_packed(b.view(np.uint8), n, self.next_tag("cot"), True, each)
            else:  # bit k of b_j at 64 j + k
                bits = np.unpackbits(b.view(np.uint8), bitorder="little")
                await self._cot(bits, reuse=True, each=each)
            for item in pending:
                await finish(*item)
        return share

    async def receive(self, choices: npt.ArrayLike) -> U8:
        """Chosen-message OT: returns m_{choices[j]}[j] as (n, 16) uint8."""
        bits = _choice_bits(choices)
        async with self.lock:
            tag = self.next_tag("chosen")
            pads = await self._rot(bits)
            masked = await self.ctx.recv(self.peer, tag)
        n = bits.size
        if not isinstance(masked, np.ndarray) or masked.nbytes != 32 * n:
            raise OtProtocolError(self.peer, f"chosen-OT messages of wrong size in {tag}")
        y = masked.view(np.uint8).reshape(2 * n, 16)
        out = select_rows(np.packbits(bits, bitorder="little"), y[:n], y[n:])
        return np.bitwise_xor(out, pads, out=out)
