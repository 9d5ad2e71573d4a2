"""The pre-loan stages on the mesh: fraud screening (PIR) and a secure credit model.

These are the building blocks of the ``credit.*`` job components
(:mod:`meshmpc_credit.components`); the job file
``meshmpc_credit/jobs/preloan.yaml`` strings them together after ``psi.align``:

1. **screen**: the bank asks partners' risk lists about its first
   ``applicants`` applicants by keyword PIR (the partners learn nothing about
   whom the bank asked; the bank learns only which asked keys are listed);
2. **rate**: a logistic regression over all parties' aligned columns is
   trained on secret shares on the even aligned rows. Two compute parties
   (the bank and the government: two-party semi2k, OT-made triples, no
   dealer) hold the shares; the other parties secret-share their columns to
   them, so their data stays hidden unless both compute parties collude. The
   scores of the odd rows are revealed to the bank only, which compares their
   AUC with a model on its own columns alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from meshmpc.linalg import SecretTensor, SecureBackend, concatenate
from meshmpc.mpc.factory import make_suite
from meshmpc.mpc.fixedpoint import FixedPoint
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.net import Context
from meshmpc.pir.api import load_database, query_table
from meshmpc.pir.server import PirServer
from meshmpc_credit.plainmodel import Preprocessor, auc, fit_logistic, predict

KEY = "credit_code"
LABEL = "default_12m"
LABEL_COLUMNS = {LABEL, "days_overdue"}  # outcomes, never features
COMPUTE_PARTIES = ["bank", "gov"]
"""The two parties that run the secure computation (semi2k, OT-made triples); the
others secret-share their columns to them and learn nothing."""
Progress = Callable[[int, int, str], None]


async def serve_risk_list(ctx: Context, risk_list: Path, key: str, querier: str) -> int:
    """Risk-list holder: answer ``querier``'s PIR queries until it is done; the list's size."""
    database = await asyncio.to_thread(load_database, risk_list, key, None, False)
    await PirServer(database).serve(ctx, querier)
    return int(pq.ParquetFile(risk_list).metadata.num_rows) \
        if risk_list.suffix == ".parquet" else -1


async def screen_applicants(ctx: Context, asked: Sequence[str], holders: Sequence[str]
                            ) -> tuple[dict[str, Any], pa.Table]:
    """Querier: ask every holder's risk list about ``asked``; a summary and a hit table."""
    tables = await asyncio.gather(*(query_table(ctx, h, list(asked)) for h in holders))
    flagged = np.zeros(len(asked), dtype=bool)
    columns: dict[str, Any] = {"key": pa.array(list(asked), pa.string())}
    hits = {}
    for holder, table in zip(holders, tables, strict=True):
        found = table.column("found").to_numpy(zero_copy_only=False).astype(bool)
        hits[holder] = int(found.sum())
        flagged |= found
        columns[f"listed_{holder}"] = pa.array(found)
    columns["flagged"] = pa.array(flagged)
    return ({"asked": len(asked), "hits": hits, "flagged": int(flagged.sum())},
            pa.table(columns))


def feature_columns(table: pa.Table, key: str, label: str | None) -> list[str]:
    """The columns of ``table`` that are model features (not the key, label or outcomes)."""
    excluded = {key, *LABEL_COLUMNS, *([label] if label else [])}
    return [c for c in table.column_names if c not in excluded]


def party_features(table: pa.Table, key: str = KEY, label: str | None = LABEL) -> np.ndarray:
    """This party's standardised feature matrix (fitted on the even rows only)."""
    columns = feature_columns(table, key, label)
    train = table.take(np.arange(0, table.num_rows, 2))
    prep = Preprocessor().fit(train, columns)
    return prep.transform(table)


async def rate(ctx: Context, table: pa.Table, label_holder: str, label: str,
               compute: Sequence[str], steps: int, learning_rate: float,
               key: str = KEY, progress: Progress | None = None
               ) -> tuple[dict[str, Any], np.ndarray | None]:
    """Train the joint model on secret shares; the label holder learns test scores and AUCs.

    Returns this party's report and, at the label holder, the revealed scores
    of the test (odd) rows.
    """
    mine = party_features(table, key, label)
    rows = table.num_rows
    widths = await _exchange_widths(ctx, mine.shape[1])
    fixed = FixedPoint()
    report: dict[str, Any] = {"features": int(mine.shape[1])}
    if ctx.party not in compute:
        await _share_out(ctx, fixed, mine, compute)
        return report, None
    backend = SecureBackend(await make_suite(ctx.subgroup(list(compute)), "semi2k"), fixed)
    blocks = []
    for party in ctx.parties:
        shape = (rows, widths[party])
        if party in compute:
            blocks.append(await backend.input(party, mine if party == ctx.party else None, shape))
        else:
            blocks.append(await _share_in(ctx, backend, party, shape, compute))
    x = concatenate([*blocks, backend.constant(np.ones((rows, 1)))], axis=1)
    labels = table.column(label).to_numpy().astype(np.float64).reshape(-1, 1) \
        if ctx.party == label_holder else None
    y = await backend.input(label_holder, labels, (rows, 1))
    train, test = np.arange(0, rows, 2), np.arange(1, rows, 2)
    weights = await train_logistic(backend, x[train], y[train], steps, learning_rate,
                                   progress=progress)
    revealed = await (await (x[test] @ weights)).reveal(to=label_holder)
    if ctx.party != label_holder:
        return report, None
    assert labels is not None and revealed is not None
    bank_only = fit_logistic(mine[train], labels[train, 0])
    bank_scores = predict(bank_only, mine[test])
    report.update({"joint_features": int(sum(widths.values())), "steps": steps,
                   "train_rows": len(train), "test_rows": len(test),
                   "auc_joint": round(auc(labels[test, 0], revealed[:, 0]), 4),
                   "auc_bank_only": round(auc(labels[test, 0], bank_scores), 4)})
    return report, revealed[:, 0]


async def _share_out(ctx: Context, fixed: FixedPoint, values: np.ndarray,
                     compute: Sequence[str]) -> None:
    """Input party: split ``values`` into two additive shares over Z_2^64 for the
    compute parties (a PRG seed to the second, the remainder to the first)."""
    ring = fixed.ring
    encoded = ring.encode(values, fixed.f)
    seed = fresh_key()
    remainder = ring.sub(encoded, ring.random(Prg(seed), values.shape, 0))
    first, second = compute
    await ctx.send(second, "share-seed", seed)
    await ctx.send(first, "share", remainder)


async def _share_in(ctx: Context, backend: SecureBackend, owner: str,
                    shape: tuple[int, int], compute: Sequence[str]) -> SecretTensor:
    """Compute party: this party's share of an input party's matrix."""
    if ctx.party == compute[0]:
        share = await ctx.recv(owner, "share")
        if not isinstance(share, np.ndarray) or share.dtype != np.uint64 \
                or backend.ring.shape(share) != shape:
            got = getattr(share, "shape", type(share).__name__)
            raise ValueError(f"party {owner} shared a {got} share, expected {shape} over Z_2^64")
    else:
        share = backend.ring.random(Prg(bytes(await ctx.recv(owner, "share-seed"))), shape, 0)
    return SecretTensor(backend, share, backend.f)


MAX_FEATURES = 100_000
"""A peer announcing more feature columns than this is refused (its width sizes the
shares this party allocates)."""


async def _exchange_widths(ctx: Context, width: int) -> dict[str, int]:
    await ctx.broadcast("width", width)
    widths = await ctx.recv_all("width")
    for peer, value in widths.items():
        if not isinstance(value, int) or not 0 <= value <= MAX_FEATURES:
            raise ValueError(f"party {peer} announced {value!r} feature columns; expected an "
                             f"integer from 0 to {MAX_FEATURES}")
    return {ctx.party: width, **widths}


async def train_logistic(backend: SecureBackend, x: SecretTensor, y: SecretTensor,
                         steps: int, learning_rate: float, l2: float = 1.0,
                         progress: Progress | None = None) -> SecretTensor:
    """Full-batch gradient descent with L2 decay: w -= lr (X^T (sigmoid(X w) - y) + l2 w) / n."""
    n, d = x.shape
    weights = backend.constant(np.zeros((d, 1)))
    decay = 1.0 - learning_rate * l2 / n
    for step in range(steps):
        if progress is not None:
            progress(step, steps, "gradient steps on secret shares")
        predictions = await (await (x @ weights)).sigmoid()
        gradient = await (x.T @ (predictions - y))
        weights = await (weights * decay) - await (gradient * (learning_rate / n))
    return weights
