"""PSI message parsers: one party of ECDH, KKRT, RR22, multi-party ECDH and unbalanced PSI
fed scripted peer messages (first byte: which protocol and role)."""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from meshmpc.crypto.hashing import item_hash
from meshmpc.crypto.oprf import OprfError
from meshmpc.net.context import Context
from meshmpc.net.errors import MalformedMessageError
from meshmpc.ot.errors import OtProtocolError
from meshmpc.psi.errors import PsiError
from meshmpc.psi.protocols import prepare_session, run_protocol
from targets._peerfix import play, script

CACHE = Path(tempfile.mkdtemp(prefix="fuzz-psi-cache-"))
DOCUMENTED = (PsiError, OtProtocolError, OprfError, MalformedMessageError)
SETS = {"r": [f"k{i}" for i in range(8)], "s": [f"k{i}" for i in range(4, 12)],
        "t": [f"k{i}" for i in range(2, 10)]}

# (protocol, parties, receiver, this party, reveal)
SCENARIOS = [
    ("ecdh", ["r", "s"], "r", "r", "receiver"), ("ecdh", ["r", "s"], "r", "s", "all"),
    ("ecdh", ["r", "s"], "r", "r", "cardinality"), ("kkrt", ["r", "s"], "r", "r", "all"),
    ("kkrt", ["r", "s"], "r", "s", "all"), ("rr22", ["r", "s"], "r", "r", "all"),
    ("rr22", ["r", "s"], "r", "s", "all"), ("ecdh-mp", ["r", "s", "t"], "r", "r", "all"),
    ("ecdh-mp", ["r", "s", "t"], "r", "s", "all"), ("ecdh-mp", ["r", "s", "t"], "r", "t", "all"),
    ("unbalanced", ["r", "s"], "r", "r", "receiver"),
    ("unbalanced", ["r", "s"], "r", "s", "all"),
]


def job(protocol: str, parties: list[str], receiver: str, party: str, reveal: Any
        ) -> Callable[[Context], Awaitable[Any]]:
    """What ``party`` runs in ``protocol`` (the set-up first, as psi run does)."""
    sizes = {p: len(SETS[p]) for p in parties}

    async def run(ctx: Context) -> Any:
        session = await prepare_session(ctx, protocol, parties, receiver)
        return await run_protocol(ctx, protocol, parties, receiver, item_hash(SETS[party]),
                                  sizes, reveal, 0, CACHE / party, session)

    return run


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris calls
    if not data:
        return
    items = script(data[1:])
    if items is None:
        return
    protocol, parties, receiver, party, reveal = SCENARIOS[data[0] % len(SCENARIOS)]
    outcome = play(party, parties, items, job(protocol, parties, receiver, party, reveal),
                   DOCUMENTED)
    if outcome is not None and outcome.matched is not None:
        rows = outcome.matched
        assert ((rows >= 0) & (rows < len(SETS[party]))).all(), "a row outside the set"
        assert len(set(rows.tolist())) == len(rows), "a row twice"
