"""Dispatch from a protocol name to the party's role in it.

Every protocol takes this party's digests and returns a :class:`PsiOutcome`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshmpc.data.vault import Vault
from meshmpc.net import Context
from meshmpc.progress import Progress
from meshmpc.psi.common import PsiOutcome, Reveal
from meshmpc.psi.ecdh import ecdh_receiver, ecdh_sender
from meshmpc.psi.errors import PsiError
from meshmpc.psi.group import GroupPool
from meshmpc.psi.keys import Digests
from meshmpc.psi.kkrt import kkrt_receiver, kkrt_sender, receiver_setup, sender_setup
from meshmpc.psi.multiparty import multiparty_psi
from meshmpc.psi.rr22 import receiver_setup as rr22_receiver_setup
from meshmpc.psi.rr22 import rr22_receiver, rr22_sender
from meshmpc.psi.rr22 import sender_setup as rr22_sender_setup
from meshmpc.psi.unbalanced import cache_vault, unbalanced_client, unbalanced_server

PROTOCOLS = {
    "ecdh": "two-party ECDH PSI over X25519 (HFH99)",
    "kkrt": "two-party OPRF PSI from OT extension and cuckoo hashing (KKRT16)",
    "rr22": "two-party OPRF PSI from silent VOLE and an OKVS (RR22)",
    "ecdh-mp": "multi-party ECDH PSI (receiver only, cardinality, or aligned results to all)",
    "unbalanced": "OPRF PSI with the server's set preprocessed once and cached",
}


async def run_protocol(ctx: Context, protocol: str, parties: list[str], receiver: str,
                       digests: Digests, sizes: dict[str, int], reveal: Reveal,
                       workers: int | None, cache_dir: Path | None = None,
                       session: Any = None, progress: Progress | None = None,
                       vault: Vault | None = None) -> PsiOutcome:
    """Run ``protocol`` among ``parties`` (this party included) on ``digests``.

    ``vault`` seals the unbalanced-PSI caches (default: the party's local vault).

    ``session`` is the ``session`` of the previous batch's outcome, if any.
    ``progress`` shows the two-party protocols' long phases with rate and ETA.
    """
    scoped = ctx.scope(f"psi-{protocol}")
    if protocol == "ecdh":
        peer = _two_party(ctx, protocol, parties)
        with GroupPool(workers) as pool:
            if ctx.party == receiver:
                return await ecdh_receiver(scoped, peer, digests, sizes[peer], reveal, pool,
                                           progress=progress)
            return await ecdh_sender(scoped, peer, digests, sizes[peer], reveal, pool,
                                     progress=progress)
    if protocol in ("kkrt", "rr22", "unbalanced") and reveal == "cardinality":
        raise PsiError(f"cardinality-only PSI needs protocol 'ecdh': in {protocol!r} the "
                       "receiver sees which of its own items matched")
    if protocol == "unbalanced":
        peer = _two_party(ctx, protocol, parties)
        cache = cache_dir or Path(".meshmpc-psi-cache")
        sealer = vault or cache_vault(ctx.party)
        if ctx.party == receiver:
            return await unbalanced_client(scoped, peer, digests, reveal, cache, sealer)
        return await unbalanced_server(scoped, peer, digests, reveal, cache, workers, progress,
                                       sealer)
    if protocol == "kkrt":
        peer = _two_party(ctx, protocol, parties)
        if ctx.party == receiver:
            return await kkrt_receiver(scoped, peer, digests, sizes[peer], reveal, session,
                                       progress)
        return await kkrt_sender(scoped, peer, digests, sizes[peer], reveal, session, progress)
    if protocol == "rr22":
        peer = _two_party(ctx, protocol, parties)
        if ctx.party == receiver:
            return await rr22_receiver(scoped, peer, digests, sizes[peer], reveal, session,
                                       progress)
        return await rr22_sender(scoped, peer, digests, sizes[peer], reveal, session, progress)
    if protocol == "ecdh-mp":
        # the ring's share of exponentiations per party varies: count them, rate only
        with (progress or Progress.off()).phase("ecdh-mp: exponentiations", None,
                                                "points") as phase, \
                GroupPool(workers, on_points=phase.advance) as pool:
            return await multiparty_psi(scoped, parties, receiver, digests, sizes, reveal, pool)
    raise PsiError(f"party {ctx.party}: unknown PSI protocol {protocol!r}")


async def prepare_session(ctx: Context, protocol: str, parties: list[str],
                          receiver: str) -> Any:
    """Set-up that needs no input (KKRT base OTs, RR22 VOLE base OTs), run while reading input.

    Returns the ``session`` to hand to :func:`run_protocol`, or None.
    """
    if protocol not in ("kkrt", "rr22") or len(parties) != 2:
        return None
    scoped = ctx.scope(f"psi-{protocol}")
    peer = _two_party(ctx, protocol, parties)
    if protocol == "rr22":
        if ctx.party == receiver:
            return await rr22_receiver_setup(scoped, peer)
        return await rr22_sender_setup(scoped, peer)
    if ctx.party == receiver:
        return await receiver_setup(scoped, peer)
    return await sender_setup(scoped, peer)


def _two_party(ctx: Context, protocol: str, parties: list[str]) -> str:
    if len(parties) != 2:
        raise PsiError(f"party {ctx.party}: protocol {protocol!r} is two-party; got {parties}")
    return next(p for p in parties if p != ctx.party)
