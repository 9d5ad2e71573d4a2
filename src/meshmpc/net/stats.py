"""Per-link traffic counters that benchmarks and protocol docs read."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class LinkStats:
    """Traffic on one link, seen from one end.

    ``bytes_*`` count every byte on the wire (headers, AEAD tags, padding of
    nothing); ``rounds`` counts flights: a send that follows a receive on the
    same link (or opens it) starts a new round.
    """

    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    rounds: int = 0
    _last_was_send: bool = False

    def on_send(self, wire_bytes: int, messages: int = 1) -> None:
        self.bytes_sent += wire_bytes
        self.messages_sent += messages
        if not self._last_was_send:
            self.rounds += 1
            self._last_was_send = True

    def on_receive(self, wire_bytes: int, messages: int = 0) -> None:
        self.bytes_received += wire_bytes
        self.messages_received += messages
        if messages:
            self._last_was_send = False

    def as_dict(self) -> dict[str, int]:
        out = asdict(self)
        out.pop("_last_was_send")
        return out


def total(stats: dict[str, LinkStats]) -> LinkStats:
    """Sum of several links' counters (rounds: the maximum over links)."""
    out = LinkStats()
    for s in stats.values():
        out.bytes_sent += s.bytes_sent
        out.bytes_received += s.bytes_received
        out.messages_sent += s.messages_sent
        out.messages_received += s.messages_received
        out.rounds = max(out.rounds, s.rounds)
    return out
