"""The mesh between worker k of one party and worker k of its partner.

Every worker makes a fresh Ed25519 key for one attempt at one group of
items (buckets or row partitions). Its coordinator sends the public key, the
worker's address, the attempt and the items to the partner's coordinator
over their identity-authenticated link (an :class:`Offer`), so each worker key
is vouched for by its party's identity key. The two workers then build the
same two-party :class:`~meshmpc.net.config.ClusterConfig`, pinning each
other's offered key, and connect with the ordinary link handshake: a
connection from any other key is refused. The config's cluster id names the
job, the worker and the attempt, so its fingerprint (sent in every HELLO)
differs for every pair and attempt: a key offered for one attempt is useless
for another, and a relay can route a connection by that fingerprint alone
(:mod:`meshmpc.net.relay`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshmpc.net.config import ClusterConfig, PartyConfig
from meshmpc.net.keys import IdentityKey, pinned_key_from_b64

PAIR_RESUME_GRACE_S = 3.0
"""A dropped worker link is resumed for this long, then the pair fails and is retried."""


@dataclass(frozen=True)
class Offer:
    """What a coordinator vouches for about one of its workers in one attempt."""

    party: str
    worker: int
    attempt: int
    items: tuple[int, ...]
    public_key: str
    host: str
    port: int

    def to_wire(self) -> dict[str, Any]:
        return {"party": self.party, "worker": self.worker, "attempt": self.attempt,
                "items": list(self.items), "public_key": self.public_key,
                "host": self.host, "port": self.port}

    @classmethod
    def from_wire(cls, doc: Any, peer: str) -> Offer:
        """Parse a peer coordinator's offer; malformed ones raise ValueError naming it."""
        if not isinstance(doc, dict):
            raise ValueError(f"{peer}: a worker offer must be a map, got {type(doc).__name__}")
        try:
            offer = cls(str(doc["party"]), int(doc["worker"]), int(doc["attempt"]),
                        tuple(int(i) for i in doc["items"]), str(doc["public_key"]),
                        str(doc["host"]), int(doc["port"]))
            pinned_key_from_b64(offer.public_key)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{peer}: malformed worker offer ({exc})") from exc
        return offer


def pair_cluster_id(job_nonce: str, worker: int, attempt: int) -> str:
    """The pair's cluster id: job, worker and attempt (hashed into the fingerprint)."""
    return f"meshmpc-scale/{job_nonce}/w{worker}/a{attempt}"


def pair_config(job_nonce: str, order: list[str], mine: Offer, theirs: Offer,
                bind: tuple[str, int] | None = None,
                connect_timeout_s: float = 60.0) -> ClusterConfig:
    """The two-party config both workers build from the two offers.

    ``order`` is the parties' cluster order (the first dials the second). ``bind``
    is where this worker listens when its offer names a relay instead.
    """
    entries = []
    for party in order:
        offer = mine if party == mine.party else theirs
        listen = bind if party == mine.party and bind is not None else (None, None)
        entries.append(PartyConfig(party, offer.host, offer.port,
                                   pinned_key_from_b64(offer.public_key),
                                   listen_host=listen[0], listen_port=listen[1]))
    return ClusterConfig(pair_cluster_id(job_nonce, mine.worker, mine.attempt), entries,
                         connect_timeout_s=connect_timeout_s,
                         resume_grace_s=PAIR_RESUME_GRACE_S)


def fresh_worker_key(party: str) -> IdentityKey:
    """A worker's key for one attempt (Ed25519 from the OS's randomness, never written)."""
    return IdentityKey.generate(party)
