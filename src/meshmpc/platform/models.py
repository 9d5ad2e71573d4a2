"""The node's database tables (SQLAlchemy 2 ORM), created and upgraded by Alembic migrations.

One database per party's node: its users and their roles, its peers, its
registered datasets and the grants it gave, the jobs it takes part in with
every party's approval and every step's state, its model versions, and the
lookups partners made under their grants (for query caps). The audit log's
tables live in :mod:`meshmpc.platform.audit` (Core, append-only triggers).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def now() -> float:
    return time.time()


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float] = mapped_column(Float, default=0.0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[float] = mapped_column(Float, default=now)


class Session(Base):
    """A browser session or an API token (only the SHA-256 of the secret is stored)."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))  # "browser" | "token"
    csrf: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created: Mapped[float] = mapped_column(Float, default=now)
    last_used: Mapped[float] = mapped_column(Float, default=now)
    expires: Mapped[float] = mapped_column(Float)
    label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    user: Mapped[User] = relationship()


class Peer(Base):
    __tablename__ = "peers"
    party: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(256))
    api_url: Mapped[str | None] = mapped_column(String(256), nullable=True)
    public_key: Mapped[str] = mapped_column(String(64))
    last_seen: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    throughput_mbps: Mapped[float | None] = mapped_column(Float, nullable=True)
    software_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    protocol_version: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    uri: Mapped[str] = mapped_column(Text)
    schema_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    columns: Mapped[list[Any]] = mapped_column(JSON, default=list)
    row_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[float] = mapped_column(Float, default=now)


class Grant(Base):
    """Which partner may use which of my datasets, in which components, until when, how often."""

    __tablename__ = "grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(ForeignKey("datasets.name"))
    grantee: Mapped[str] = mapped_column(String(64), index=True)
    components: Mapped[list[Any]] = mapped_column(JSON, default=list)
    initiators: Mapped[list[Any]] = mapped_column(JSON, default=list)
    purposes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    expires: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    max_lookups_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_lookups_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lookups_total: Mapped[int] = mapped_column(BigInteger, default=0)
    auto_approve: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(64))
    created: Mapped[float] = mapped_column(Float, default=now)


class LookupDay(Base):
    """Lookups a partner made under a grant on one (UTC) day, for the per-day cap."""

    __tablename__ = "lookup_days"
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    initiator: Mapped[str] = mapped_column(String(64))
    spec: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(24), default="AwaitingApproval")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(64), nullable=True)
    submitted_by: Mapped[str] = mapped_column(String(64))
    created: Mapped[float] = mapped_column(Float, default=now)
    started: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished: Mapped[float | None] = mapped_column(Float, nullable=True)
    consent_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    consent_root: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expires: Mapped[float | None] = mapped_column(Float, nullable=True)
    purged: Mapped[float | None] = mapped_column(Float, nullable=True)
    parties: Mapped[list[JobParty]] = relationship(cascade="all, delete-orphan")
    steps: Mapped[list[JobStep]] = relationship(cascade="all, delete-orphan")


class JobParty(Base):
    __tablename__ = "job_parties"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    party: Mapped[str] = mapped_column(String(64), primary_key=True)
    approval: Mapped[str] = mapped_column(String(16), default="pending")
    approver: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided: Mapped[float | None] = mapped_column(Float, nullable=True)


class JobStep(Base):
    __tablename__ = "job_steps"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    party: Mapped[str] = mapped_column(String(64), primary_key=True)
    step: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="Pending")
    started: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    bytes_sent: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    step: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    holders: Mapped[list[Any]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    deployed: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[float] = mapped_column(Float, default=now)


class ConsentBatch(Base):
    """What a data owner keeps of a request's consent: who, why, how many, and the Merkle root."""

    __tablename__ = "consent_batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    requester: Mapped[str] = mapped_column(String(64), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))  # job | lookup | score
    reference: Mapped[str | None] = mapped_column(String(128), nullable=True)  # job id
    count: Mapped[int] = mapped_column(BigInteger)
    merkle_root: Mapped[str] = mapped_column(String(64))
    created: Mapped[float] = mapped_column(Float, default=now)


class ConsentRefs(Base):
    """The requester's own record of the consent references it sent under a root."""

    __tablename__ = "consent_refs"
    merkle_root: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(64))
    refs: Mapped[list[Any]] = mapped_column(JSON)
    created: Mapped[float] = mapped_column(Float, default=now)


class PeerKey(Base):
    """A peer's identity key other than the one pinned in ``peers``: a key being rotated
    out (``previous``, accepted until ``valid_until``) or a ``revoked`` one (never again)."""

    __tablename__ = "peer_keys"
    party: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # "previous" | "revoked"
    valid_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    recorded: Mapped[float] = mapped_column(Float, default=now)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
