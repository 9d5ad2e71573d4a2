"""Correlated randomness for semi2k: the provider interface and the dealer.

Protocol code asks a :class:`TripleProvider` for Beaver triples (element-wise
and matrix), AND triples on uint64 words, doubly-authenticated bits (daBits:
one random bit XOR-shared and additively shared) and truncation pairs, and
never cares where they come from.

:class:`DealerTripleProvider` is the *trusted dealer* mode, for tests and
benchmarks only: all parties derive the dealer's randomness from one seed that
party 0 sends in the clear, so any party could compute every other party's
shares. It is insecure by construction and must be chosen by name
(``triples="dealer"``); it is never a default. The OT-based provider
(:mod:`meshmpc.mpc.ot_triples`) is the secure one.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from meshmpc.mpc.circuits import plane_words, unslice_plane
from meshmpc.mpc.ordering import Turnstile
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.mpc.ring import RING64, Ring
from meshmpc.net import Context

Arrays = tuple[np.ndarray, ...]
T = TypeVar("T")


OPERATIONS = ("arith_triples", "matrix_triples", "and_triples", "dabits", "trunc_pairs")


def _in_turn(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    @functools.wraps(method)
    async def wrapper(self: TripleProvider, *args: Any, **kwargs: Any) -> T:
        ticket = self.turnstile.ticket()  # before any await: the operation's identity
        return await self.turnstile.run(ticket, lambda: method(self, *args, **kwargs))

    return wrapper


class TripleProvider(ABC):
    """Source of correlated randomness for one party (semi2k).

    Every method named in :data:`OPERATIONS` that a subclass defines is
    wrapped so that calls run one at a time in the order they were made
    (see :class:`Turnstile`); such a method must not call another one.
    """

    name: str

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.turnstile = Turnstile()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in OPERATIONS:
            if name in cls.__dict__ and not getattr(cls.__dict__[name], "__isabstractmethod__",
                                                    False):
                setattr(cls, name, _in_turn(cls.__dict__[name]))

    async def setup(self) -> None:  # noqa: B027 - optional hook
        """One-time set-up (key exchange, base OTs); idempotent."""

    @abstractmethod
    async def arith_triples(self, ring: Ring, shape: Sequence[int]) -> Arrays:
        """Shares of (a, b, c) with c = a * b element-wise."""

    @abstractmethod
    async def matrix_triples(self, ring: Ring, sx: Sequence[int], sy: Sequence[int],
                             reuse: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        """Shares of (A, B, C) with C = A @ B, plus a handle naming A.

        A has shape sx and B shape sy. With ``reuse=(handle, transposed)`` the A of
        an earlier triple (transposed or not) is used again with a fresh B, so that
        a matrix opened once as X - A can be multiplied again (X @ w, then X^T @ r)
        without a second opening; A must then have shape sx already.
        """

    @abstractmethod
    async def and_triples(self, shape: Sequence[int]) -> Arrays:
        """XOR shares of uint64 words (a, b, c) with c = a & b."""

    @abstractmethod
    async def dabits(self, ring: Ring, n: int) -> Arrays:
        """(plane, arith): a random bit vector as XOR-shared plane words and ring shares."""

    @abstractmethod
    async def trunc_pairs(self, ring: Ring, shape: Sequence[int], bits: int,
                          low_bits: bool = False) -> Arrays:
        """(r, (r mod 2^(l-1)) >> bits, msb(r)) as ring shares, for N-party truncation.

        With ``low_bits`` a fourth array follows: XOR shares of r mod 2^bits as
        uint64 words (Z_2^64 only), which exact truncation compares against.
        """


class DealerTripleProvider(TripleProvider):
    """INSECURE trusted-dealer correlations, for tests and benchmarks only.

    Every party expands the dealer seed; party j's shares come from stream j and
    the last party's shares are the corrections that make the relation hold.
    Costs: no traffic after set-up; the last party does N times the PRG work.
    """

    name = "dealer"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._prg: Prg | None = None
        self._nonce = 0
        self._a_totals: dict[int, np.ndarray] = {}

    async def setup(self) -> None:
        if self._prg is not None:
            return
        ctx = self.ctx.scope("dealer")
        if ctx.index == 0:
            seed = fresh_key()
            await ctx.broadcast("seed", seed)
        else:
            seed = await ctx.recv(ctx.parties[0], "seed")
        self._prg = Prg(bytes(seed))

    def _draw(self, ring: Ring, shape: Sequence[int], party: int, slot: int) -> np.ndarray:
        assert self._prg is not None, "call setup() first"
        return ring.random(self._prg, shape, self._nonce, party * 16 + slot)

    def _is_last(self) -> bool:
        return self.ctx.index == len(self.ctx.parties) - 1

    def _total(self, ring: Ring, shape: Sequence[int], slot: int) -> np.ndarray:
        total = self._draw(ring, shape, 0, slot)
        for j in range(1, len(self.ctx.parties)):
            ring.iadd(total, self._draw(ring, shape, j, slot))
        return total

    def _share_of(self, ring: Ring, value_fn: Callable[[], np.ndarray],
                  shape: Sequence[int], slot: int) -> np.ndarray:
        """This party's additive share of value_fn() (only the last party evaluates it)."""
        if not self._is_last():
            return self._draw(ring, shape, self.ctx.index, slot)
        share = np.ascontiguousarray(value_fn())
        for j in range(len(self.ctx.parties) - 1):
            ring.isub(share, self._draw(ring, shape, j, slot))
        return share

    async def arith_triples(self, ring: Ring, shape: Sequence[int]) -> Arrays:
        await self.setup()
        self._nonce += 1
        me = self.ctx.index
        a, b = self._draw(ring, shape, me, 0), self._draw(ring, shape, me, 1)
        c = self._share_of(
            ring, lambda: ring.mul(self._total(ring, shape, 0), self._total(ring, shape, 1)),
            shape, 2)
        return a, b, c

    async def matrix_triples(self, ring: Ring, sx: Sequence[int], sy: Sequence[int],
                             reuse: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        await self.setup()
        self._nonce += 1
        me, nonce = self.ctx.index, self._nonce
        a_nonce, transposed = (nonce, False) if reuse is None else reuse
        a_shape = tuple(reversed(sx)) if transposed else tuple(sx)

        def a_of(party: int) -> np.ndarray:
            a = ring.random(self._prg_or_fail(), a_shape, a_nonce, party * 16)
            return a.T if transposed else a  # a view; numpy's matmul takes it

        def a_total() -> np.ndarray:
            total = self._a_totals.get(a_nonce)
            if total is None:
                total = ring.random(self._prg_or_fail(), a_shape, a_nonce, 0)
                for j in range(1, len(self.ctx.parties)):
                    ring.iadd(total, ring.random(self._prg_or_fail(), a_shape, a_nonce, j * 16))
                self._a_totals = {a_nonce: total}  # keep the latest A for reuse
            return total.T if transposed else total

        a, b = a_of(me), self._draw(ring, sy, me, 1)
        sz = (*sx[:-1], sy[-1])
        c = self._share_of(
            ring, lambda: ring.matmul(a_total(), self._total(ring, sy, 1)), sz, 2)
        return a, b, c, a_nonce

    def _prg_or_fail(self) -> Prg:
        assert self._prg is not None, "call setup() first"
        return self._prg

    def _xor_total(self, shape: Sequence[int], slot: int) -> np.ndarray:
        total = self._draw(RING64, shape, 0, slot)
        for j in range(1, len(self.ctx.parties)):
            total = total ^ self._draw(RING64, shape, j, slot)
        return total

    def _xor_share_of(self, value: Callable[[], np.ndarray], shape: Sequence[int],
                      slot: int) -> np.ndarray:
        if not self._is_last():
            return self._draw(RING64, shape, self.ctx.index, slot)
        share = value()
        for j in range(len(self.ctx.parties) - 1):
            share = share ^ self._draw(RING64, shape, j, slot)
        return share

    async def and_triples(self, shape: Sequence[int]) -> Arrays:
        await self.setup()
        self._nonce += 1
        me = self.ctx.index
        a, b = self._draw(RING64, shape, me, 0), self._draw(RING64, shape, me, 1)
        c = self._xor_share_of(
            lambda: self._xor_total(shape, 0) & self._xor_total(shape, 1), shape, 2)
        return a, b, c

    async def dabits(self, ring: Ring, n: int) -> Arrays:
        await self.setup()
        self._nonce += 1
        words = (plane_words(n),)
        plane = self._draw(RING64, words, self.ctx.index, 0)
        arith = self._share_of(
            ring, lambda: ring.from_int(unslice_plane(self._xor_total(words, 0), n)), (n,), 1)
        return plane, arith

    async def trunc_pairs(self, ring: Ring, shape: Sequence[int], bits: int,
                          low_bits: bool = False) -> Arrays:
        await self.setup()
        self._nonce += 1
        r = self._draw(ring, shape, self.ctx.index, 0)
        cache: dict[str, np.ndarray] = {}

        def total() -> np.ndarray:
            if "r" not in cache:
                cache["r"] = self._total(ring, shape, 0)
            return cache["r"]

        def low_shifted() -> np.ndarray:
            return ring.shr(ring.shr(ring.shl(total(), 1), 1), bits)

        low = self._share_of(ring, low_shifted, shape, 1)
        top = self._share_of(ring, lambda: ring.from_int(ring.msb(total())), shape, 2)
        if not low_bits:
            return r, low, top
        mask = np.uint64((1 << bits) - 1)
        under = self._xor_share_of(lambda: total() & mask, shape, 3)
        return r, low, top, under
