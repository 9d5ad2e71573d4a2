"""A correlation pool per pair of parties: base OTs once, OT extension on demand.

``OtPool.setup(ctx, peer)`` runs the 128 base OTs of both OT-extension
directions concurrently (SoftSpokenOT with k = 4 by default: 4 bytes per OT
on the wire; ``engine="iknp"`` for classic IKNP at 16 bytes per OT); each
party is the extension sender in one direction and the receiver in the other.
Later layers (PSI, triples, comparison) then draw correlated, random or
chosen OTs of any batch size from ``pool.sender`` / ``pool.receiver``
without redoing base OTs; KKRT OPRF instances can be seeded
from the pool too (:meth:`OtPool.kkrt_sender` / :meth:`OtPool.kkrt_receiver`).

Ordering rule: for each direction, both parties issue matching calls in the
same order (my ``pool.sender.cot(n)`` pairs with the peer's
``pool.receiver.cot(choices)``). Run unrelated consumers in separate pools or
separate ``ctx.scope`` names if they may interleave.
"""

from __future__ import annotations

import asyncio

from meshmpc.crypto.prg import Prg
from meshmpc.net.context import Context
from meshmpc.ot.errors import OtInputError
from meshmpc.ot.iknp import CotReceiver, CotSender
from meshmpc.ot.kkrt import KkrtReceiver, KkrtSender
from meshmpc.ot.softspoken import DEFAULT_K, SoftSpokenReceiver, SoftSpokenSender

DEFAULT_ENGINE = "softspoken"


def _direction(sender: str, receiver: str) -> str:
    return f"pool/{sender}->{receiver}"


class OtPool:
    """Both OT-extension directions between this party and ``peer``."""

    def __init__(self, peer: str, sender: CotSender, receiver: CotReceiver) -> None:
        self.peer = peer
        self.sender = sender
        """This party sends: ``cot(n)``, ``rot(n)``, ``send(m0, m1)``; holds ``delta``."""
        self.receiver = receiver
        """This party receives: ``cot(choices)``, ``random_cot(n)``, ``rot``, ``receive``."""
        self._kkrt = 0

    @classmethod
    async def setup(
        cls, ctx: Context, peer: str, prg: Prg | None = None, engine: str = DEFAULT_ENGINE,
        k: int = DEFAULT_K,
    ) -> OtPool:
        """Base OTs for both directions with ``peer`` (one round trip each, concurrent).

        ``engine`` is "iknp" (16 bytes per OT) or "softspoken" (128/k bits per
        OT, k in 1, 2, 4, 8); both parties must pick the same.
        """
        prg = prg or Prg()
        me = ctx.party
        out, into = _direction(me, peer), _direction(peer, me)
        if engine == "iknp":
            pair = (CotSender.setup(ctx, peer, prg.fork(), out),
                    CotReceiver.setup(ctx, peer, prg.fork(), into))
        elif engine == "softspoken":
            pair = (SoftSpokenSender.setup(ctx, peer, prg.fork(), out, k),
                    SoftSpokenReceiver.setup(ctx, peer, prg.fork(), into, k))
        else:
            raise OtInputError(f"unknown OT engine {engine!r}; use 'iknp' or 'softspoken'")
        sender, receiver = await asyncio.gather(*pair)
        return cls(peer, sender, receiver)

    async def kkrt_sender(self) -> KkrtSender:
        """A KKRT OPRF key holder towards the peer, base OTs drawn from this pool.

        The peer calls :meth:`kkrt_receiver` at the same point.
        """
        self._kkrt += 1
        return await KkrtSender.from_random_ots(self.receiver, f"kkrt{self._kkrt}")

    async def kkrt_receiver(self) -> KkrtReceiver:
        """The OPRF-evaluating side matching the peer's :meth:`kkrt_sender`."""
        self._kkrt += 1
        return await KkrtReceiver.from_random_ots(self.sender, f"kkrt{self._kkrt}")


async def setup_pools(
    ctx: Context, prg: Prg | None = None, engine: str = DEFAULT_ENGINE, k: int = DEFAULT_K
) -> dict[str, OtPool]:
    """One pool with every peer, all set up concurrently."""
    prg = prg or Prg()
    pools = await asyncio.gather(
        *(OtPool.setup(ctx, p, prg.fork(), engine, k) for p in ctx.peers)
    )
    return dict(zip(ctx.peers, pools, strict=True))
