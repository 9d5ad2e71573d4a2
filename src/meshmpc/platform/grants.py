"""Grants: which partner may use which of my datasets, in which components, until when, how often.

A job that would use one of this node's datasets is refused before anything
runs unless a live grant covers it: the dataset, the partner that initiated
the job, every component the job runs on this party, the purpose, the expiry
and the use count. Lookups (PIR queries, online scores) are capped per day and
in total per grant, so a partner cannot enumerate a risk list with public
credit codes: :meth:`GrantBook.consume_lookups` admits what fits under the cap
and refuses the rest with a message that says how many were refused and why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from meshmpc.errors import MeshMPCError
from meshmpc.platform.db import NodeDatabase
from meshmpc.platform.models import Dataset, Grant, LookupDay


class GrantError(MeshMPCError, PermissionError):
    """No grant covers what a partner asked for, or its cap is used up."""


@dataclass(frozen=True)
class DatasetUse:
    """One use of a dataset by a job: which dataset, by whose job, in which components."""

    dataset: str
    initiator: str
    components: tuple[str, ...]
    purpose: str | None = None


def _today(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


class GrantBook:
    """The grants this node gave, and the checks made against them."""

    def __init__(self, db: NodeDatabase, party: str) -> None:
        self.db = db
        self.party = party
        self._lookup_lock = threading.Lock()  # one cap update at a time in this process

    def create(self, dataset: str, grantee: str, created_by: str, **limits: Any) -> int:
        """Grant ``grantee`` the use of ``dataset`` under ``limits``; returns the grant id."""
        allowed = {"components", "initiators", "purposes", "expires", "max_uses",
                   "max_lookups_per_day", "max_lookups_total", "auto_approve"}
        unknown = set(limits) - allowed
        if unknown:
            raise GrantError(f"unknown grant field(s) {sorted(unknown)}; use {sorted(allowed)}")
        with self.db.session() as s:
            if s.scalar(select(Dataset).where(Dataset.name == dataset)) is None:
                raise GrantError(f"{self.party}: no dataset {dataset!r} registered to grant")
            grant = Grant(dataset=dataset, grantee=grantee, created_by=created_by,
                          **{k: v for k, v in limits.items() if v is not None})
            s.add(grant)
            s.flush()
            return grant.id

    def revoke(self, grant_id: int) -> None:
        with self.db.session() as s:
            grant = s.get(Grant, grant_id)
            if grant is None:
                raise GrantError(f"{self.party}: no grant {grant_id}")
            grant.revoked = True

    def _covers(self, grant: Grant, use: DatasetUse, t: float) -> str | None:
        """Why ``grant`` does not cover ``use`` (None when it does)."""
        if grant.revoked:
            return f"grant {grant.id} was revoked"
        if grant.expires is not None and grant.expires < t:
            return f"grant {grant.id} expired"
        if grant.max_uses is not None and grant.uses >= grant.max_uses:
            return f"grant {grant.id} is used up ({grant.uses} of {grant.max_uses} jobs)"
        missing = [c for c in use.components if grant.components and c not in grant.components]
        if missing:
            return f"grant {grant.id} does not allow component(s) {missing}"
        if grant.purposes and use.purpose not in grant.purposes:
            return f"grant {grant.id} does not allow purpose {use.purpose!r}"
        return None

    def find(self, use: DatasetUse) -> Grant:
        """The live grant covering ``use``, or a GrantError naming the dataset and the gap."""
        t = time.time()
        with self.db.session() as s:
            grants = s.scalars(select(Grant).where(Grant.dataset == use.dataset,
                                                   Grant.grantee == use.initiator)).all()
            reasons = []
            for grant in grants:
                reason = self._covers(grant, use, t)
                if reason is None:
                    return grant
                reasons.append(reason)
        detail = "; ".join(reasons) if reasons else "no grant exists"
        raise GrantError(f"{self.party}: {use.initiator} has no grant to use dataset "
                         f"{use.dataset!r} in {list(use.components)}: {detail}")

    def check_job(self, uses: Iterable[DatasetUse]) -> list[Grant]:
        """Every use covered? Returns the grants (refuses on the first gap)."""
        return [self.find(use) for use in uses]

    def record_job_use(self, grant_ids: Iterable[int]) -> None:
        with self.db.session() as s:
            for grant_id in grant_ids:
                grant = s.get(Grant, grant_id)
                if grant is not None:
                    grant.uses += 1

    def consume_lookups(self, grantee: str, dataset: str, count: int,
                        purpose: str | None = None, component: str = "pir.query",
                        whole: bool = False) -> int:
        """Admit up to ``count`` lookups under the grant's caps; raise when none fit.

        Returns how many were admitted; when fewer than asked, the caller
        answers that many and reports the rest as refused (the partner's
        sweep stops at the cap). ``whole``: admit all ``count`` or none (a PIR
        batch cannot be answered in part).
        """
        if count < 1:
            raise GrantError(f"{self.party}: a lookup batch needs at least one key, got {count}")
        t = time.time()
        grant_id = self.find(DatasetUse(dataset, grantee, (component,), purpose)).id
        with self._lookup_lock, self.db.session() as s:
            grant = s.get(Grant, grant_id, with_for_update=True)
            assert grant is not None
            day = s.get(LookupDay, (grant.id, _today(t)))
            if day is None:
                day = LookupDay(grant_id=grant.id, day=_today(t), count=0)
                s.add(day)
            room = _room(grant, day.count, count)
            if whole and room < count:
                room = 0
            day.count += room
            grant.lookups_total += room
            per_day, total, used_today, used = (grant.max_lookups_per_day,
                                                grant.max_lookups_total, day.count,
                                                grant.lookups_total)
        if room == 0:
            raise GrantError(f"{self.party}: {grantee}'s lookups on {dataset!r} are capped "
                             f"(grant {grant_id}: {used_today} of {_cap(per_day)} today, "
                             f"{used} of {_cap(total)} in total); {count} refused")
        return room


def _room(grant: Grant, used_today: int, count: int) -> int:
    """How many of ``count`` lookups fit under the grant's per-day and total caps."""
    room = count
    if grant.max_lookups_per_day is not None:
        room = min(room, grant.max_lookups_per_day - used_today)
    if grant.max_lookups_total is not None:
        room = min(room, grant.max_lookups_total - grant.lookups_total)
    return max(room, 0)


def _cap(limit: int | None) -> str:
    return "unlimited" if limit is None else str(limit)
