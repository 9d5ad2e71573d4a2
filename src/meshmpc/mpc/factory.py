"""Build a ready-to-use suite by name: the one place that picks triple providers.

``await make_suite(ctx, "semi2k", triples="ot")`` or ``make_suite(ctx, "rep3")``.
The dealer provider is only reachable by naming it (``triples="dealer"``);
semi2k's default is the OT-based provider.
"""

from __future__ import annotations

from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.rep3 import Rep3
from meshmpc.mpc.ring import ring_for
from meshmpc.mpc.semi2k import Semi2k
from meshmpc.mpc.suite import Suite
from meshmpc.mpc.triples import DealerTripleProvider, TripleProvider
from meshmpc.net import Context

SUITES = ("semi2k", "rep3")
TRIPLE_SOURCES = ("ot", "dealer", "none")


def make_provider(ctx: Context, triples: str, ot_k: int | None = None) -> TripleProvider:
    """The semi2k correlation source named ``triples`` ("ot" or "dealer").

    ``ot_k``: SoftSpokenOT's k for the OT provider (None: the default, 4)."""
    if triples == "dealer":
        return DealerTripleProvider(ctx)
    if triples == "ot":
        from meshmpc.mpc.ot_triples import OtTripleProvider

        return OtTripleProvider(ctx) if ot_k is None else OtTripleProvider(ctx, ot_k)
    raise MpcError(f"semi2k triples must be 'ot' or 'dealer' (insecure, tests only), "
                   f"got {triples!r}")


def default_comparison(parties: int, triples: str) -> str:
    """semi2k's comparison when none is named: the millionaires' protocol for two
    parties with OT triples (about 4x less CPU than the adder circuit there, whose
    188 AND gates per element each cost two random OTs), else the circuit."""
    return "millionaire" if parties == 2 and triples == "ot" else "circuit"


async def make_suite(ctx: Context, suite: str, triples: str = "ot",
                     ring_bits: int = 64, comparison: str | None = None,
                     ot_k: int | None = None) -> Suite:
    """A suite bound to ``ctx`` with its set-up done (keys exchanged, base OTs run).

    ``comparison`` (semi2k): "circuit" (bit-sliced GMW), "gc" (half-gates) or
    "millionaire" (CrypTFlow2's digit-wise comparison; the last two need 2
    parties); None picks :func:`default_comparison`. ``ot_k``: see
    :func:`make_provider`.
    """
    ring = ring_for(ring_bits)
    if suite == "rep3":
        if comparison not in (None, "circuit"):
            raise MpcError("rep3 compares with its replicated circuit; comparison='gc' is "
                           "a semi2k option")
        if triples not in ("none", "ot"):
            raise MpcError(f"rep3 needs no triples; got triples={triples!r} (use 'none')")
        rep3 = Rep3(ctx, ring)
        await rep3.setup()
        return rep3
    if suite == "semi2k":
        provider = make_provider(ctx, triples, ot_k)
        await provider.setup()
        if comparison is None:
            comparison = default_comparison(len(ctx.parties), triples)
        return Semi2k(ctx, ring, provider, comparison)
    raise MpcError(f"unknown suite {suite!r}; choose one of {SUITES}")
