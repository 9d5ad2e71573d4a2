"""Dispatch from a protocol name to the party's role in it.

Every protocol takes this party's digests and returns a :class:`PsiOutcome`.
"""

from __future__ import annotations

from meshmpc.net import Context
from meshmpc.psi.common import PsiOutcome, Reveal
from meshmpc.psi.ecdh import ecdh_receiver, ecdh_sender
from meshmpc.psi.errors import PsiError
from meshmpc.psi.group import GroupPool
from meshmpc.psi.keys import Digests
from meshmpc.psi.kkrt import kkrt_receiver, kkrt_sender
from meshmpc.psi.multiparty import multiparty_psi

PROTOCOLS = {
    "ecdh": "two-party ECDH PSI over X25519 (HFH99)",
    "kkrt": "two-party OPRF PSI from OT extension and cuckoo hashing (KKRT16)",
    "ecdh-mp": "multi-party ECDH PSI, result to the receiver only",
}


async def run_protocol(ctx: Context, protocol: str, parties: list[str], receiver: str,
                       digests: Digests, sizes: dict[str, int], reveal: Reveal,
                       workers: int | None) -> PsiOutcome:
    """Run ``protocol`` among ``parties`` (this party included) on ``digests``."""
    scoped = ctx.scope(f"psi-{protocol}")
    if protocol == "ecdh":
        peer = _two_party(ctx, protocol, parties)
        with GroupPool(workers) as pool:
            if ctx.party == receiver:
                return await ecdh_receiver(scoped, peer, digests, sizes[peer], reveal, pool)
            return await ecdh_sender(scoped, peer, digests, sizes[peer], reveal, pool)
    if protocol == "kkrt":
        peer = _two_party(ctx, protocol, parties)
        if reveal == "cardinality":
            raise PsiError("cardinality-only PSI needs protocol 'ecdh': in KKRT the receiver "
                           "sees which of its own items matched")
        if ctx.party == receiver:
            return await kkrt_receiver(scoped, peer, digests, sizes[peer], reveal)
        return await kkrt_sender(scoped, peer, digests, sizes[peer], reveal)
    if protocol == "ecdh-mp":
        with GroupPool(workers) as pool:
            return await multiparty_psi(scoped, parties, receiver, digests, sizes, reveal, pool)
    raise PsiError(f"party {ctx.party}: unknown PSI protocol {protocol!r}")


def _two_party(ctx: Context, protocol: str, parties: list[str]) -> str:
    if len(parties) != 2:
        raise PsiError(f"party {ctx.party}: protocol {protocol!r} is two-party; got {parties}")
    return next(p for p in parties if p != ctx.party)
