"""Every decision, stored so it can be explained and replayed.

Table ``credit_decisions`` (same database conventions as the node:
:func:`meshmpc.platform.db.make_engine`): the decision id, the applicant key,
the strategy version and its SHA-256, which arm decided (champion or
challenger), the full decision context (bank fields, screens, score,
unavailable partners), the answer with the rules fired, and for challenger
traffic the champion's shadow answer for comparison.

With the bank's vault (:mod:`meshmpc.data.vault`, the key beside its identity
key) nothing personal is readable at rest: ``applicant`` holds a keyed hash
(HMAC-SHA256 under a key derived from the vault key), which is all the store
is queried on (:meth:`DecisionRecords.by_applicant`); the applicant key, the
context, the answer and the shadow answer are sealed with AES-256-GCM, each
bound to its decision id and field, so a sealed value copied into another row
does not open. Reading a sealed store without the key is a clear
:class:`~meshmpc.data.vault.VaultError`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import sqlalchemy as sa

from meshmpc.data.vault import Vault, VaultError
from meshmpc.platform.db import make_engine

SEALED_PREFIX = "sealed:"
HASHED_PREFIX = "h:"
SEALED_FIELDS = ("context", "answer", "shadow")

metadata = sa.MetaData()
decisions_table = sa.Table(
    "credit_decisions", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created", sa.Float, nullable=False, index=True),
    sa.Column("applicant", sa.String(128), nullable=False, index=True),
    sa.Column("strategy", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("arm", sa.String(16), nullable=False),
    sa.Column("context", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("shadow", sa.Text),
)


class DecisionRecords:
    """Append and read decisions (sealed under ``vault`` when one is given)."""

    def __init__(self, engine: sa.Engine | str, vault: Vault | None = None) -> None:
        self.engine = make_engine(engine) if isinstance(engine, str) else engine
        self.vault = vault
        metadata.create_all(self.engine)

    def add(self, row: dict[str, Any]) -> None:
        self.add_many([row])

    def add_many(self, rows: list[dict[str, Any]]) -> None:
        """Store ``rows`` in one transaction (group commit of concurrent decisions)."""
        values = [self._stored(row) for row in rows]
        with self.engine.begin() as conn:
            conn.execute(decisions_table.insert(), values)

    def _stored(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row as written: the JSON fields dumped, and sealed and hashed with a vault."""
        out = {**row, "created": row.get("created", time.time())}
        for name in SEALED_FIELDS:
            out[name] = None if row.get(name) is None else _dump(row[name])
        if self.vault is None:
            return out
        out["context"] = _dump({"applicant": row["applicant"], "context": row["context"]})
        out["applicant"] = self.lookup_key(str(row["applicant"]))
        for name in SEALED_FIELDS:
            if out[name] is not None:
                sealed = self.vault.seal(out[name].encode(), f"{row['id']}/{name}")
                out[name] = SEALED_PREFIX + base64.b64encode(sealed).decode()
        return out

    def lookup_key(self, applicant: str) -> str:
        """What the ``applicant`` column holds for ``applicant`` (its keyed hash with a vault)."""
        if self.vault is None:
            return applicant
        return HASHED_PREFIX + self.vault.keyed_hash(applicant, "credit_decisions.applicant")

    def _field(self, decision_id: str, name: str, text: str | None) -> Any:
        if text is None:
            return None
        if text.startswith(SEALED_PREFIX):
            if self.vault is None:
                raise VaultError(f"credit_decisions {decision_id}.{name}: sealed under the "
                                 "bank's vault key; open the store with it (the .vault file "
                                 "beside the bank's identity key)")
            text = self.vault.open(base64.b64decode(text[len(SEALED_PREFIX):]),
                                   f"{decision_id}/{name}").decode()
        return json.loads(text)

    def loaded(self, row: Any) -> dict[str, Any]:
        """A stored row with its sealed fields opened and the applicant restored."""
        out = dict(row._mapping)
        for name in SEALED_FIELDS:
            out[name] = self._field(out["id"], name, out[name])
        if str(row.applicant).startswith(HASHED_PREFIX):
            out["applicant"] = out["context"]["applicant"]
            out["context"] = out["context"]["context"]
        return out

    def get(self, decision_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(decisions_table).where(
                decisions_table.c.id == decision_id)).first()
        return None if row is None else self.loaded(row)

    def by_applicant(self, applicant: str) -> list[dict[str, Any]]:
        """Every decision on ``applicant``, oldest first (found by its keyed hash)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(decisions_table).where(
                decisions_table.c.applicant == self.lookup_key(applicant))
                .order_by(decisions_table.c.created)).all()
        return [self.loaded(r) for r in rows]

    def versions_of(self, strategy: str) -> dict[int, int]:
        """How many decisions each version made."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(decisions_table.c.version, sa.func.count())
                                .where(decisions_table.c.strategy == strategy)
                                .group_by(decisions_table.c.version)).all()
        return {int(v): int(n) for v, n in rows}

    def challenger_comparison(self, strategy: str) -> dict[str, Any]:
        """Challenger traffic: how often its decision equals the champion's shadow one."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(decisions_table.c.id, decisions_table.c.answer,
                                          decisions_table.c.shadow)
                                .where(decisions_table.c.strategy == strategy,
                                       decisions_table.c.arm == "challenger")).all()
        pairs = [(self._field(i, "answer", a)["decision"],
                  self._field(i, "shadow", s)["decision"]) for i, a, s in rows if s]
        matrix: dict[str, dict[str, int]] = {}
        for challenger, champion in pairs:
            matrix.setdefault(champion, {}).setdefault(challenger, 0)
            matrix[champion][challenger] += 1
        same = sum(1 for a, b in pairs if a == b)
        return {"challenger_decisions": len(pairs),
                "agreement": same / len(pairs) if pairs else None,
                "champion_vs_challenger": matrix}


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class RecordWriter:
    """Group commit: decisions waiting to be stored go in one transaction per round.

    :meth:`store` returns once the row is committed, so an answer is never sent
    for a decision that is not stored; concurrent decisions share one commit.
    """

    def __init__(self, records: DecisionRecords) -> None:
        self.records = records
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[None]]] = \
            asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def store(self, row: dict[str, Any]) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="decision-records")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((row, future))
        await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await asyncio.to_thread(self.records.add_many, [row for row, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every waiting decision gets the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
