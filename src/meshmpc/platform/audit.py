"""A node's tamper-evident audit log: hash-chained entries, signed checkpoints, peer anchors.

Every entry (a login, a grant, an approval, a job step and what it revealed to
whom, a model deployment, a strategy publication) is appended with the SHA-256
of the previous entry chained into its own hash::

    hash_k = SHA-256(hash_{k-1} || seq_k || ts_k || kind_k || actor_k || detail_k)
    hash_0 = SHA-256("meshmpc-audit-v1|" party)

with the integers and the float in fixed binary form, the strings
length-prefixed and ``detail`` as canonical JSON (sorted keys), so every
stored column is covered and nothing needs parsing to verify.
Every ``checkpoint_every`` entries or ``checkpoint_seconds`` (whichever comes
first) the node signs the head ``(seq, hash_seq)`` with its Ed25519 identity key.
Peers keep the signed heads they receive (*anchors*, see
:mod:`meshmpc.platform.audit_sync`): a node could re-sign a rewritten log on its
own, but not the heads its peers already hold.

:func:`verify` detects an edited, deleted, inserted or reordered entry (the
chain or the sequence numbers break), a forged checkpoint (bad signature or a
head that is not the chain's), and, given the anchors a peer holds, a rewritten
or truncated log that was re-signed afterwards. The tables refuse UPDATE and
DELETE through database triggers, so even the node's administrator account
cannot change history through the database without dropping the trigger,
which the chain then exposes anyway.

Entries are stored through SQLAlchemy Core (SQLite by default, PostgreSQL
when the node is configured so); verification streams rows in batches, so a
log of 10^6 entries verifies in seconds with bounded memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import logging.handlers
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from meshmpc.errors import MeshMPCError
from meshmpc.net.keys import Ed25519Signer

GENESIS_DOMAIN = b"meshmpc-audit-v1|"
CHECKPOINT_DOMAIN = b"meshmpc-audit-checkpoint-v1|"
VERIFY_BATCH = 20_000

metadata = sa.MetaData()

entries_table = sa.Table(
    "audit_entries", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False, index=True),
    sa.Column("actor", sa.String(128), nullable=False, index=True),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
)

checkpoints_table = sa.Table(
    "audit_checkpoints", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("head", sa.LargeBinary(32), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("signature", sa.LargeBinary(64), nullable=False),
)

anchors_table = sa.Table(
    "audit_anchors", metadata,
    sa.Column("peer", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("head", sa.LargeBinary(32), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("signature", sa.LargeBinary(64), nullable=False),
    sa.Column("received_ts", sa.Float, nullable=False),
)

APPEND_ONLY_TABLES = ("audit_entries", "audit_checkpoints", "audit_anchors")


class AuditError(MeshMPCError, ValueError):
    """The audit log is unusable or was given an invalid entry."""


@dataclass(frozen=True)
class Checkpoint:
    """A signed head of a party's log: entry ``seq`` has chain hash ``head``."""

    party: str
    seq: int
    head: bytes
    ts: float
    signature: bytes

    def message(self) -> bytes:
        return checkpoint_message(self.party, self.seq, self.head, self.ts)

    def valid_for(self, key: VerifyKey) -> bool:
        """True when ``key`` signed this head."""
        try:
            key.verify(self.message(), self.signature)
        except BadSignatureError:
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {"party": self.party, "seq": self.seq, "head": self.head.hex(), "ts": self.ts,
                "signature": self.signature.hex()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Checkpoint:
        try:
            return cls(str(obj["party"]), int(obj["seq"]), bytes.fromhex(obj["head"]),
                       float(obj["ts"]), bytes.fromhex(obj["signature"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise AuditError(f"malformed checkpoint {obj!r}: {exc}") from exc


def checkpoint_message(party: str, seq: int, head: bytes, ts: float) -> bytes:
    """The bytes a checkpoint signature covers (domain-separated, party-bound)."""
    name = party.encode()
    return (CHECKPOINT_DOMAIN + struct.pack(">H", len(name)) + name
            + struct.pack(">Qd", seq, ts) + head)


def genesis_hash(party: str) -> bytes:
    return hashlib.sha256(GENESIS_DOMAIN + party.encode()).digest()


def canonical_detail(detail: Mapping[str, Any]) -> str:
    """The canonical JSON of an entry's detail (sorted keys, no spaces, UTF-8)."""
    return json.dumps(dict(detail), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev: bytes, seq: int, ts: float, kind: str, actor: str, detail: str) -> bytes:
    """The chain hash of one entry (see the module docstring)."""
    k, a, d = kind.encode(), actor.encode(), detail.encode()
    return hashlib.sha256(b"".join((prev, struct.pack(">QdHHI", seq, ts, len(k), len(a), len(d)),
                                    k, a, d))).digest()


def install_append_only_triggers(engine: sa.Engine) -> None:
    """Make the audit tables refuse UPDATE and DELETE at the database level."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for table in APPEND_ONLY_TABLES:
                for op in ("UPDATE", "DELETE"):
                    conn.exec_driver_sql(
                        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} "
                        f"ON {table} BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END")
        elif engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE OR REPLACE FUNCTION meshmpc_audit_append_only() RETURNS trigger AS $$ "
                "BEGIN RAISE EXCEPTION 'audit log is append-only'; END; $$ LANGUAGE plpgsql")
            for table in APPEND_ONLY_TABLES:
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
                conn.exec_driver_sql(
                    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                    f"FOR EACH ROW EXECUTE FUNCTION meshmpc_audit_append_only()")


class AuditLog:
    """Append entries and sign checkpoints for one party's node.

    ``engine`` is a SQLAlchemy engine (or URL); the tables are created when
    missing. ``append`` is safe to call from one writer at a time (the node
    serialises writes through this object).
    """

    def __init__(self, engine: sa.Engine | str, party: str, signing_key: Ed25519Signer,
                 checkpoint_every: int = 1000, checkpoint_seconds: float = 5.0,
                 forward: Any = None) -> None:
        self.engine = sa.create_engine(engine) if isinstance(engine, str) else engine
        self.party = party
        self.signing_key = signing_key
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.forward = forward
        # the API appends from its event loop and from its worker threads: one writer at a time
        self._lock = threading.RLock()
        metadata.create_all(self.engine)
        install_append_only_triggers(self.engine)
        self._seq, self._head = self._load_head()
        self._last_checkpoint_seq, self._last_checkpoint_ts = self._load_last_checkpoint()

    def _load_head(self) -> tuple[int, bytes]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(entries_table.c.seq, entries_table.c.hash)
                               .order_by(entries_table.c.seq.desc()).limit(1)).first()
        return (int(row.seq), bytes(row.hash)) if row else (0, genesis_hash(self.party))

    def _load_last_checkpoint(self) -> tuple[int, float]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(checkpoints_table.c.seq, checkpoints_table.c.ts)
                               .order_by(checkpoints_table.c.seq.desc()).limit(1)).first()
        return (int(row.seq), float(row.ts)) if row else (0, time.time())

    @property
    def seq(self) -> int:
        """The sequence number of the last entry (0 when empty)."""
        return self._seq

    def append(self, kind: str, actor: str, detail: Mapping[str, Any] | None = None) -> int:
        """Append one entry; returns its sequence number."""
        return self.append_many([(kind, actor, detail or {})])

    def append_many(self, items: Iterable[tuple[str, str, Mapping[str, Any]]]) -> int:
        """Append several entries in one transaction; returns the last sequence number."""
        with self._lock:
            return self._append_locked(items)

    def _append_locked(self, items: Iterable[tuple[str, str, Mapping[str, Any]]]) -> int:
        rows: list[dict[str, Any]] = []
        forwarded: list[dict[str, Any]] = []
        seq, head = self._seq, self._head
        for kind, actor, detail in items:
            if not kind or not actor:
                raise AuditError("an audit entry needs a kind and an actor")
            seq += 1
            ts = time.time()
            text = canonical_detail(detail)
            head = entry_hash(head, seq, ts, kind, actor, text)
            rows.append({"seq": seq, "ts": ts, "kind": kind, "actor": actor, "detail": text,
                         "hash": head})
            forwarded.append({"seq": seq, "ts": ts, "kind": kind, "actor": actor,
                              "detail": dict(detail)})
        if not rows:
            return self._seq
        with self.engine.begin() as conn:
            conn.execute(entries_table.insert(), rows)
        self._seq, self._head = seq, head
        if self.forward is not None:
            for entry in forwarded:
                self.forward.info(json.dumps(entry, ensure_ascii=False, sort_keys=True))
        self._maybe_checkpoint()
        return seq

    def _maybe_checkpoint(self) -> None:
        due = (self._seq - self._last_checkpoint_seq >= self.checkpoint_every
               or time.time() - self._last_checkpoint_ts >= self.checkpoint_seconds)
        if due and self._seq > self._last_checkpoint_seq:
            self._checkpoint_locked()

    def checkpoint(self) -> Checkpoint:
        """Sign the current head now (a no-op returning the last one if nothing changed)."""
        with self._lock:
            return self._checkpoint_locked()

    def _checkpoint_locked(self) -> Checkpoint:
        if self._seq == self._last_checkpoint_seq and self._seq:
            latest = self.latest_checkpoint()
            if latest is not None:
                return latest
        ts = time.time()
        message = checkpoint_message(self.party, self._seq, self._head, ts)
        signature = bytes(self.signing_key.sign(message).signature)
        with self.engine.begin() as conn:
            conn.execute(checkpoints_table.insert(), [{"seq": self._seq, "head": self._head,
                                                       "ts": ts, "signature": signature}])
        self._last_checkpoint_seq, self._last_checkpoint_ts = self._seq, ts
        return Checkpoint(self.party, self._seq, self._head, ts, signature)

    def latest_checkpoint(self) -> Checkpoint | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(checkpoints_table)
                               .order_by(checkpoints_table.c.seq.desc()).limit(1)).first()
        return _checkpoint_of(self.party, row) if row else None

    def store_anchor(self, checkpoint: Checkpoint, peer_key: VerifyKey) -> None:
        """Keep a peer's signed head after checking its signature (idempotent)."""
        if checkpoint.party == self.party:
            raise AuditError("a node does not anchor its own checkpoints")
        if not checkpoint.valid_for(peer_key):
            raise AuditError(f"checkpoint from {checkpoint.party} at entry {checkpoint.seq} "
                             f"has a bad signature; not anchored")
        with self.engine.begin() as conn:
            known = conn.execute(sa.select(anchors_table.c.head).where(
                anchors_table.c.peer == checkpoint.party,
                anchors_table.c.seq == checkpoint.seq)).first()
            if known is not None:
                if bytes(known.head) != checkpoint.head:
                    raise AuditError(f"{checkpoint.party} signed two different heads for entry "
                                     f"{checkpoint.seq}: its log was rewritten")
                return
            conn.execute(anchors_table.insert(), [{
                "peer": checkpoint.party, "seq": checkpoint.seq, "head": checkpoint.head,
                "ts": checkpoint.ts, "signature": checkpoint.signature,
                "received_ts": time.time()}])

    def anchors_of(self, peer: str) -> list[Checkpoint]:
        """The signed heads of ``peer`` this node holds, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(anchors_table).where(anchors_table.c.peer == peer)
                                .order_by(anchors_table.c.seq)).all()
        return [_checkpoint_of(peer, row) for row in rows]

    def search(self, kind: str | None = None, actor: str | None = None,
               since: float | None = None, limit: int = 100, offset: int = 0
               ) -> list[dict[str, Any]]:
        """Entries matching the filters, newest first (for the API and console)."""
        query = sa.select(entries_table).order_by(entries_table.c.seq.desc())
        if kind:
            query = query.where(entries_table.c.kind == kind)
        if actor:
            query = query.where(entries_table.c.actor == actor)
        if since is not None:
            query = query.where(entries_table.c.ts >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).all()
        return [{"seq": row.seq, "ts": row.ts, "kind": row.kind, "actor": row.actor,
                 "detail": json.loads(row.detail)} for row in rows]


def _checkpoint_of(party: str, row: Any) -> Checkpoint:
    return Checkpoint(party, int(row.seq), bytes(row.head), float(row.ts), bytes(row.signature))


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`: counts and every problem found, first first."""

    party: str
    entries: int = 0
    checkpoints: int = 0
    anchors: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"party": self.party, "ok": self.ok, "entries": self.entries,
                "checkpoints": self.checkpoints, "anchors": self.anchors,
                "problems": self.problems}


def _stream_entries(engine: sa.Engine) -> Iterator[tuple[Any, ...]]:
    """(seq, ts, kind, actor, detail, hash) in sequence order, in batches (bounded memory).

    Plain DB-API rows: verification touches every entry, and SQLAlchemy's Row
    objects would cost more than the hashing.
    """
    with engine.connect() as conn:
        cursor = conn.exec_driver_sql(
            "SELECT seq, ts, kind, actor, detail, hash FROM audit_entries ORDER BY seq")
        while batch := cursor.fetchmany(VERIFY_BATCH):
            yield from batch


def chain_hashes(engine: sa.Engine, party: str, report: VerifyReport) -> dict[int, bytes]:
    """Walk the chain; returns seq -> hash for every entry (problems go to ``report``)."""
    head, expected, hashes = genesis_hash(party), 1, {}
    for seq, ts, kind, actor, detail, stored in _stream_entries(engine):
        if seq != expected:
            report.problems.append(f"entry {expected}: missing; the next entry is {seq} "
                                   f"(deleted or renumbered)")
        head = entry_hash(head, seq, ts, kind, actor, detail)
        if head != bytes(stored):
            report.problems.append(f"entry {seq}: its contents or position do not match the "
                                   f"chain (edited, inserted or reordered)")
            head = bytes(stored)  # resynchronise so one edit is reported once
        hashes[seq] = head
        expected = seq + 1
        report.entries += 1
    return hashes


def verify(engine: sa.Engine | str, party: str, key: VerifyKey | Sequence[VerifyKey],
           anchors: Iterable[Checkpoint] = ()) -> VerifyReport:
    """Check a party's log: the chain, its own signed checkpoints, and heads anchored by peers.
    ``key`` may be several keys: the node's current one and those it rotated out (each
    checkpoint is signed by the key the node had then)."""
    keys = (key,) if isinstance(key, VerifyKey) else tuple(key)
    engine = sa.create_engine(engine) if isinstance(engine, str) else engine
    report = VerifyReport(party)
    hashes = chain_hashes(engine, party, report)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(checkpoints_table).order_by(checkpoints_table.c.seq)).all()
    for row in rows:
        _check_head(_checkpoint_of(party, row), keys, hashes, report, "checkpoint")
        report.checkpoints += 1
    for anchor in anchors:
        if anchor.party != party:
            report.problems.append(f"anchor for {anchor.party} given to verify {party}'s log")
            continue
        _check_head(anchor, keys, hashes, report, "anchored head")
        report.anchors += 1
    return report


def _check_head(cp: Checkpoint, keys: Sequence[VerifyKey], hashes: Mapping[int, bytes],
                report: VerifyReport, what: str) -> None:
    if not any(cp.valid_for(key) for key in keys):
        report.problems.append(f"{what} at entry {cp.seq}: signature invalid")
    elif cp.seq == 0:
        if hashes and cp.head != genesis_hash(cp.party):
            report.problems.append(f"{what} at entry 0: not the genesis head")
    elif cp.seq not in hashes:
        report.problems.append(f"{what} at entry {cp.seq}: the log has no such entry "
                               f"(truncated or rewritten after it was signed)")
    elif hashes[cp.seq] != cp.head:
        report.problems.append(f"{what} at entry {cp.seq}: the log's hash there differs from "
                               f"the signed one (rewritten)")


def syslog_forwarder(address: str | tuple[str, int] = "/dev/log",
                     facility: int = 13) -> logging.Logger:
    """A logger that forwards each appended entry to syslog (facility 13: log audit).

    Pass it as ``AuditLog(..., forward=syslog_forwarder(("siem.bank", 514)))`` so a
    bank's SIEM keeps its own copy; the chain in the database stays the reference.
    """
    logger = logging.getLogger(f"meshmpc.audit.forward.{address}")
    if not logger.handlers:
        logger.addHandler(logging.handlers.SysLogHandler(address=address, facility=facility))
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
