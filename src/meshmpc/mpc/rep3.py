"""rep3: three-party replicated secret sharing (ABY3, Mohassel-Rindal 2018).

x = x_0 + x_1 + x_2; party i holds the pair (x_i, x_{i+1}). Security model:
semi-honest, honest majority (at most one of the three parties corrupted);
nothing is revealed beyond the outputs a caller reveals. No triples: a product
is local (x_i y_i + x_i y_{i+1} + x_{i+1} y_i) plus a zero sharing and one
message to the previous party, so a matrix product costs |XY| words per party,
independent of the inner dimension. Zero sharings come from pairwise PRG keys
(party i holds k_i and k_{i+1}). See protocols/rep3.md for rounds and bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from meshmpc.mpc import circuits
from meshmpc.mpc.errors import MpcError, UnsupportedOperationError
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.mpc.ring import RING64, Ring
from meshmpc.mpc.suite import Share, Suite
from meshmpc.net import Context

Pair = tuple[np.ndarray, np.ndarray]


class Rep3(Suite):
    """Replicated sharing among exactly three parties; shares are (x_i, x_{i+1})."""

    name = "rep3"

    def __init__(self, ctx: Context, ring: Ring) -> None:
        super().__init__(ctx, ring)
        if len(ctx.parties) != 3:
            raise MpcError(f"rep3 needs exactly 3 parties, got {len(ctx.parties)}")
        i = ctx.index
        self.next_party = ctx.parties[(i + 1) % 3]
        self.prev_party = ctx.parties[(i - 1) % 3]
        self._own: Prg | None = None  # k_i, shared with the previous party
        self._next: Prg | None = None  # k_{i+1}, shared with the next party

    async def setup(self) -> None:
        """Exchange the pairwise PRG keys (one 16-byte message per party)."""
        if self._own is not None:
            return
        key = fresh_key()
        ctx = self.ctx.scope("rep3")
        await ctx.send(self.prev_party, "key", key)
        self._own = Prg(key)
        self._next = Prg(bytes(await ctx.recv(self.next_party, "key")))

    def _prgs(self) -> tuple[Prg, Prg]:
        if self._own is None or self._next is None:
            raise MpcError("rep3: call `await suite.setup()` before computing")
        return self._own, self._next

    # --- structure -------------------------------------------------------------
    def lift(self, fn: Callable[..., np.ndarray], *shares: Share) -> Share:
        return (fn(*(s[0] for s in shares)), fn(*(s[1] for s in shares)))

    def components(self, x: Share) -> list[np.ndarray]:
        return [x[0], x[1]]

    def transpose(self, x: Share, axes: Sequence[int] | None = None) -> Share:
        if x[0].ndim == 2 and axes in (None, (1, 0), [1, 0]):
            return (x[0].T, x[1].T)  # views: the ring's matmul streams them in C
        return self.lift(lambda a: self.ring.transpose(a, axes), x)

    def _place(self, comp: int, value: np.ndarray) -> Pair:
        """The sharing whose component ``comp`` is value and the others zero."""
        i, zero = self.ctx.index, np.zeros_like(value)
        return (value if i == comp else zero, value if (i + 1) % 3 == comp else zero)

    def public(self, c: np.ndarray) -> Share:
        return self._place(0, c.copy())

    def bpublic(self, c: np.ndarray) -> Share:
        return self._place(0, c.copy())

    def add_public(self, x: Share, c: np.ndarray) -> Share:
        return self.add(x, self._place(0, self.ring.broadcast_to(c, self.shape(x))))

    def _zero(self, ring: Ring, shape: Sequence[int], xor: bool = False) -> np.ndarray:
        """alpha_i = F(k_i) - F(k_{i+1}): the three alphas sum (or XOR) to zero."""
        own, nxt = self._prgs()
        nonce = self.op_nonce
        a, b = ring.random(own, shape, nonce, 7), ring.random(nxt, shape, nonce, 7)
        return a ^ b if xor else ring.sub(a, b)

    async def _reshare(self, z: np.ndarray) -> Pair:
        """Send z_i to the previous party, receive z_{i+1}: the pair (z_i, z_{i+1})."""
        ctx = self.ctx.scope("rs")
        await ctx.send(self.prev_party, self.tag("z"), z)
        return z, await ctx.recv(self.next_party, self.tag("z"))

    # --- input / output ------------------------------------------------------------
    async def input(self, owner: str, value: np.ndarray | None, shape: Sequence[int]) -> Share:
        """Owner o sets x_{o+1}, x_{o+2} from seeds and x_o = v - both; sends x_o to o+2."""
        self.check_party(owner)
        self.next_nonce()
        await self.setup()
        ring, ctx, tag = self.ring, self.ctx.scope("input"), self.tag("in")
        o = self.ctx.parties.index(owner)
        me = self.ctx.index
        if me == o:
            if value is None or ring.shape(value) != tuple(shape):
                raise MpcError(f"party {owner}: input must have shape {tuple(shape)}")
            s1, s2 = fresh_key(), fresh_key()
            x1, x2 = ring.random(Prg(s1), shape, 0), ring.random(Prg(s2), shape, 0)
            x0 = ring.sub(ring.sub(value, x1), x2)
            await ctx.send(self.ctx.parties[(o + 1) % 3], tag, [s1, s2])
            await ctx.send(self.ctx.parties[(o + 2) % 3], tag, [s2, x0])
            return x0, x1
        msg = await ctx.recv(owner, tag)
        if me == (o + 1) % 3:
            return ring.random(Prg(bytes(msg[0])), shape, 0), ring.random(Prg(bytes(msg[1])),
                                                                          shape, 0)
        return ring.random(Prg(bytes(msg[0])), shape, 0), np.asarray(msg[1], dtype=np.uint64)

    async def reveal(self, x: Share, to: str | None = None) -> np.ndarray | None:
        """Party i lacks x_{i+2}, which the next party holds as its second component."""
        self.next_nonce()
        ctx, tag = self.ctx.scope("reveal"), self.tag("v")
        if to is None:
            await ctx.send(self.prev_party, tag, x[1])
            missing = await ctx.recv(self.next_party, tag)
        else:
            self.check_party(to)
            if self.ctx.party == self.next_party_of(to):
                await ctx.send(to, tag, x[1])
            if self.ctx.party != to:
                return None
            missing = await ctx.recv(self.next_party, tag)
        return self.ring.add(self.ring.add(x[0], x[1]), missing)

    def next_party_of(self, party: str) -> str:
        return self.ctx.parties[(self.ctx.parties.index(party) + 1) % 3]

    # --- multiplication ------------------------------------------------------------
    async def mul(self, x: Share, y: Share) -> Share:
        self.next_nonce()
        ring = self.ring
        z = ring.add(ring.mul(x[0], ring.add(y[0], y[1])), ring.mul(x[1], y[0]))
        return await self._reshare(ring.add(z, self._zero(ring, ring.shape(z))))

    async def matmul(self, x: Share, y: Share) -> Share:
        self.next_nonce()
        ring = self.ring
        sx, sy = ring.shape(x[0]), ring.shape(y[0])
        if len(sx) != 2 or len(sy) != 2 or sx[1] != sy[0]:
            raise MpcError(f"matmul needs (m,k) @ (k,p) shares, got {sx} @ {sy}")
        z = ring.add(ring.matmul(x[0], ring.add(y[0], y[1])), ring.matmul(x[1], y[0]))
        return await self._reshare(ring.add(z, self._zero(ring, ring.shape(z))))

    async def trunc(self, x: Share, bits: int) -> Share:
        """ABY3 Pi_trunc1 (semi-honest form): x = x_0 + (x_1 + x_2) as a 2-of-2 sharing.

        Party 0 and party 2 shift x_0, party 1 shifts x_1 + x_2 (SecureML), then
        party 1 re-randomises with r from k_2 (shared with party 2) and sends
        y' - r to party 0. One message of n words; error <= 1 ulp, failure
        probability about 2^(l_x + 1 - l) as in SecureML.
        """
        self.next_nonce()
        ring, i = self.ring, self.ctx.index
        shape = ring.shape(x[0])
        ctx, tag = self.ctx.scope("trunc"), self.tag("t")
        own, nxt = self._prgs()
        if i == 0:
            y0 = ring.sar(x[0], bits)
            return y0, await ctx.recv(self.ctx.parties[1], tag)
        if i == 1:
            y = ring.neg(ring.sar(ring.neg(ring.add(x[0], x[1])), bits))
            r = ring.random(nxt, shape, self.op_nonce, 3)
            first = ring.sub(y, r)
            await ctx.send(self.ctx.parties[0], tag, first)
            return first, r
        return ring.random(own, shape, self.op_nonce, 3), ring.sar(x[1], bits)

    # --- boolean ------------------------------------------------------------------
    async def band(self, x: Share, y: Share) -> Share:
        self.next_nonce()
        z = (x[0] & (y[0] ^ y[1])) ^ (x[1] & y[0])
        return await self._reshare(z ^ self._zero(RING64, z.shape, xor=True))

    async def msb_planes(self, x: Share) -> Share:
        """Operands x_0 (held by parties 0, 2) and x_1 + x_2 (input by party 1)."""
        if self.ring.bits != 64:
            raise UnsupportedOperationError("rep3: bit decomposition needs Z_2^64")
        self.next_nonce()
        i = self.ctx.index
        # x_0 is component 0 of a trivial boolean sharing: party 0 holds it first, party 2 second
        x0 = circuits.bitslice(x[0] if i == 0 else x[1]) if i != 1 else None
        zero = np.zeros((64, circuits.plane_words(x[0].size)), np.uint64)
        a = self._place(0, x0 if x0 is not None else zero)
        b = await self._input_from_one(1, circuits.bitslice(ring_sum(x)) if i == 1 else None,
                                       a[0].shape, xor=True)
        return await circuits.msb_of_sum(self, [a, b])

    async def _input_from_one(self, owner: int, value: np.ndarray | None,
                              shape: Sequence[int], xor: bool) -> Share:
        """Share a value only party ``owner`` knows: c_o = r (key k_o, which party o-1
        also holds), c_{o+1} = v - r sent to party o+1, c_{o+2} = 0. One message."""
        own, nxt = self._prgs()
        ring, i, nonce = RING64 if xor else self.ring, self.ctx.index, self.op_nonce
        ctx, tag = self.ctx.scope("in1"), self.tag("b")
        sub = (lambda a, b: a ^ b) if xor else ring.sub
        zero = ring.zeros(shape)
        if i == owner:  # holds (c_o, c_{o+1}); c_o = r from k_o (shared with o-1)
            if value is None:
                raise MpcError(f"rep3: party {self.ctx.party} must supply its value")
            r = ring.random(own, shape, nonce, 5)
            other = sub(value, r)
            await ctx.send(self.next_party, tag, other)
            return r, other
        if i == (owner + 1) % 3:  # holds (c_{o+1}, c_{o+2} = 0)
            return await ctx.recv(self.prev_party, tag), zero
        return zero, ring.random(nxt, shape, nonce, 5)  # (c_{o+2} = 0, c_o = r)

    async def b2a_plane(self, bits: Share, n: int) -> Share:
        """b = b_0 ^ b_1 ^ b_2: party 0 inputs t = b_0 ^ b_1, then t + b_2 - 2 t b_2."""
        self.next_nonce()
        ring, i = self.ring, self.ctx.index
        t_bits = circuits.unslice_plane(bits[0] ^ bits[1], n) if i == 0 else None
        t = await self._input_from_one(0, ring.from_int(t_bits) if t_bits is not None else None,
                                       (n,), xor=False)
        b2 = ring.zeros((n,)) if i == 0 else ring.from_int(
            circuits.unslice_plane(bits[0] if i == 2 else bits[1], n))
        b2_share = self._place(2, b2)
        prod = await self.mul(t, b2_share)
        return self.sub(self.add(t, b2_share), self.add(prod, prod))


def ring_sum(x: Pair) -> np.ndarray:
    """x_1 + x_2 as party 1 sees it (its two components), over Z_2^64."""
    return RING64.add(x[0], x[1])
