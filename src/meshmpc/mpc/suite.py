"""The interface every protocol suite implements (semi2k, rep3).

Linear algebra and ML code talk to a :class:`Suite` only, so they do not care
which suite runs. A suite works on *shares*: opaque per-party objects (an
additive share array for semi2k, a pair of arrays for rep3) holding ring arrays
of one logical shape. Local operations are plain methods; anything that talks
to other parties is ``async``. Every operation is vectorised over whole arrays:
one call per batch, one or two messages per round.

Boolean shares hold uint64 words XOR-shared among the parties; the comparison
circuits in :mod:`meshmpc.mpc.circuits` work on bit-sliced words (64 planes).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from meshmpc.mpc.errors import MpcError, UnsupportedOperationError
from meshmpc.mpc.ordering import Turnstile
from meshmpc.mpc.ring import Ring, Shape
from meshmpc.net import Context

Share = Any
"""A party's share: suite-specific (ndarray for semi2k, tuple of two for rep3)."""


class Suite(ABC):
    """One MPC protocol suite bound to a party's Context and a ring."""

    name: str

    def __init__(self, ctx: Context, ring: Ring) -> None:
        self.ctx = ctx
        self.ring = ring
        self._nonce = 0
        self._op: contextvars.ContextVar[int] = contextvars.ContextVar(
            f"meshmpc-op-{id(self)}", default=0)
        self._turnstile = Turnstile()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Make every public coroutine method of a suite an exclusive operation."""
        super().__init_subclass__(**kwargs)
        for name, fn in list(cls.__dict__.items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(fn) \
                    and not getattr(fn, "__isabstractmethod__", False):
                setattr(cls, name, _exclusive(fn))

    def next_nonce(self) -> int:
        """Start an operation: take its identity (nonce) now, before any await.

        The counter advances identically on every party (SPMD order). The
        nonce is bound to the running task's context, so operations run
        concurrently (``asyncio.gather(x * y, z * w)``: each in its own task)
        keep their own identity however their awaits interleave, and a nested
        operation's nonce does not leak into a sibling task.
        """
        self._nonce += 1
        self._op.set(self._nonce)
        return self._nonce

    @property
    def op_nonce(self) -> int:
        """The nonce of the operation running in this task (0 before any)."""
        return self._op.get()

    def tag(self, what: str) -> str:
        """A message tag unique to the operation running in this task."""
        return f"{what}/{self._op.get()}"

    def check_party(self, party: str) -> None:
        if party not in self.ctx.parties:
            raise MpcError(f"unknown party {party!r}; the parties are {self.ctx.parties}")

    # --- structure (applied to every component of a share) -------------------
    @abstractmethod
    def lift(self, fn: Callable[..., np.ndarray], *shares: Share) -> Share:
        """Apply a ring-array function to the matching components of shares."""

    def transpose(self, x: Share, axes: Sequence[int] | None = None) -> Share:
        """Transposed share (a suite may remember the lineage to reuse masks)."""
        return self.lift(lambda a: self.ring.transpose(a, axes), x)

    def shape(self, x: Share) -> Shape:
        return self.ring.shape(self.components(x)[0])

    @abstractmethod
    def components(self, x: Share) -> list[np.ndarray]:
        """The ring arrays this party holds for share x."""

    # --- input / output -------------------------------------------------------
    @abstractmethod
    async def input(self, owner: str, value: np.ndarray | None, shape: Sequence[int]) -> Share:
        """Secret-share ``value`` (ring array) held by ``owner``; others pass None."""

    @abstractmethod
    async def reveal(self, x: Share, to: str | None = None) -> np.ndarray | None:
        """Open x to every party (to=None) or only to party ``to`` (others get None)."""

    # --- linear, local --------------------------------------------------------
    def add(self, x: Share, y: Share) -> Share:
        return self.lift(self.ring.add, x, y)

    def sub(self, x: Share, y: Share) -> Share:
        return self.lift(self.ring.sub, x, y)

    def neg(self, x: Share) -> Share:
        return self.lift(self.ring.neg, x)

    @abstractmethod
    def add_public(self, x: Share, c: np.ndarray) -> Share:
        """x + c for a public ring array c."""

    def mul_public(self, x: Share, c: np.ndarray) -> Share:
        """x * c element-wise for a public ring array c (no truncation)."""
        return self.lift(lambda a: self.ring.mul(a, c), x)

    def matmul_public(self, x: Share, c: np.ndarray, left: bool = False) -> Share:
        """x @ c (or c @ x when ``left``) for a public ring matrix c."""
        if left:
            return self.lift(lambda a: self.ring.matmul(c, a), x)
        return self.lift(lambda a: self.ring.matmul(a, c), x)

    @abstractmethod
    def public(self, c: np.ndarray) -> Share:
        """A trivial sharing of a public ring array."""

    # --- interactive arithmetic ----------------------------------------------
    @abstractmethod
    async def mul(self, x: Share, y: Share) -> Share:
        """Element-wise product (same shapes)."""

    @abstractmethod
    async def matmul(self, x: Share, y: Share) -> Share:
        """Matrix product of 2-D shares; traffic proportional to the inputs."""

    @abstractmethod
    async def trunc(self, x: Share, bits: int) -> Share:
        """Probabilistic truncation x / 2^bits (error at most 1 unit in the last place)."""

    async def trunc_exact(self, x: Share, bits: int) -> Share:
        """Exact floor(x / 2^bits) for signed x; see each suite for support."""
        raise UnsupportedOperationError(f"{self.name}: exact truncation is not implemented")

    # --- boolean world --------------------------------------------------------
    @abstractmethod
    async def band(self, x: Share, y: Share) -> Share:
        """AND of XOR-shared uint64 words (same shapes)."""

    def bxor(self, x: Share, y: Share) -> Share:
        return self.lift(np.bitwise_xor, x, y)

    @abstractmethod
    def bpublic(self, c: np.ndarray) -> Share:
        """A trivial XOR sharing of public words."""

    @abstractmethod
    async def msb_planes(self, x: Share) -> Share:
        """Bit-sliced XOR sharing of the top bit of every element of x (ring Z_2^64)."""

    @abstractmethod
    async def b2a_plane(self, bits: Share, n: int) -> Share:
        """Arithmetic sharing (0/1) of the first n bits of an XOR-shared plane."""

    async def msb(self, x: Share) -> Share:
        """Arithmetic sharing of the sign bit of every element (1 where x < 0)."""
        if self.ring.bits != 64:
            raise UnsupportedOperationError(
                f"{self.name}: comparisons run over Z_2^64 only (got {self.ring.name})"
            )
        shape = self.shape(x)
        if int(np.prod(shape, dtype=np.int64)) == 0:
            # nothing to compare: every party knows the (public) shape, so no message is sent
            return self.public(np.zeros(shape, np.uint64))
        flat = self.lift(lambda a: a.reshape(-1), x)
        plane = await self.msb_planes(flat)
        bits = await self.b2a_plane(plane, int(np.prod(shape, dtype=np.int64)))
        return self.lift(lambda a: a.reshape(shape), bits)


_INSIDE: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "meshmpc-inside-suite-op", default=frozenset())
T = TypeVar("T")


def _exclusive(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Run a top-level suite operation alone, in the order operations started.

    The ticket is taken when the call starts, before any await, so two
    operations started by ``asyncio.gather`` run in the same order on every
    party. Operations called from inside another operation of the same suite
    (in its task or tasks it spawns) run directly.
    """

    @functools.wraps(method)
    async def run(self: Suite, *args: Any, **kwargs: Any) -> T:
        key = id(self)
        if key in _INSIDE.get():
            return await method(self, *args, **kwargs)
        ticket = self._turnstile.ticket()

        async def work() -> T:
            token = _INSIDE.set(_INSIDE.get() | {key})
            try:
                return await method(self, *args, **kwargs)
            finally:
                _INSIDE.reset(token)

        return await self._turnstile.run(ticket, work)

    return run


for _name, _fn in list(Suite.__dict__.items()):
    if not _name.startswith("_") and inspect.iscoroutinefunction(_fn) \
            and not getattr(_fn, "__isabstractmethod__", False):
        setattr(Suite, _name, _exclusive(_fn))
