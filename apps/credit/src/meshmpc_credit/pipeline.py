"""The four-party pre-loan job: validate, align (PSI), screen (PIR), rate (secure LR).

Every party runs :func:`credit_job` in its own process with its own files;
only protocol messages cross the mesh. Stages:

1. **validate**: each party checks its data against its schema on its own
   node; one bad input stops every party before any protocol runs (its owner
   gets the file, column and rows; the others learn only which party failed);
2. **align**: two-party KKRT PSI between the bank and each partner on
   ``credit_code``; the bank intersects the results and every party writes its
   rows of the entities all four hold, in one common order;
3. **screen**: the bank asks the internet-finance company's and the
   government's risk lists about the first ``applicants`` applicants by
   keyword PIR (the partners learn nothing about whom the bank asked);
4. **rate**: a logistic regression over all four parties' columns is trained
   on secret shares on the even aligned rows. The bank and the government
   compute (two-party semi2k, OT-made triples, no dealer); the
   internet-finance company and the telecom operator secret-share their
   columns to them, so their data stays hidden unless both compute parties
   collude. The scores of the odd rows are revealed to the bank only, which
   compares their AUC with a model on its own columns alone.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from meshmpc.data.jobcheck import validate_party_input
from meshmpc.linalg import SecretTensor, SecureBackend, concatenate
from meshmpc.mpc.factory import make_suite
from meshmpc.mpc.fixedpoint import FixedPoint
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.net import Context
from meshmpc.pir.api import load_database, query_table
from meshmpc.pir.server import PirServer
from meshmpc.psi.job import job_from_options, run_job
from meshmpc_credit.plainmodel import Preprocessor, auc, fit_logistic, predict

KEY = "credit_code"
LABEL = "default_12m"
LABEL_COLUMNS = {LABEL, "days_overdue"}  # outcomes, never features
COMPUTE_PARTIES = ["bank", "gov"]
"""The two parties that run the secure computation (semi2k, OT-made triples); the
others secret-share their columns to them and learn nothing."""
RISK_LIST_HOLDERS = ["fin", "gov"]
"""Partners whose risk lists the bank screens applicants against."""


def _timed(times: dict[str, float], name: str, start: float) -> None:
    times[name] = round(time.perf_counter() - start, 3)


async def credit_job(ctx: Context, data_dir: str, out_dir: str, applicants: int = 200,
                     steps: int = 25, learning_rate: float = 1.0) -> dict[str, Any]:
    """One party's side of the whole job; returns what this party learnt and timings."""
    data, out = Path(data_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    start = time.perf_counter()
    own = data / f"{ctx.party}.parquet"
    await validate_party_input(ctx.scope("validate"), data / f"{ctx.party}.schema.toml", own)
    _timed(times, "validate", start)

    start = time.perf_counter()
    aligned = await _align(ctx.scope("align"), own, out)
    _timed(times, "align", start)
    result: dict[str, Any] = {"party": ctx.party, "aligned_rows": aligned.num_rows}

    start = time.perf_counter()
    screen = await _screen(ctx.scope("screen"), data, applicants)
    _timed(times, "screen", start)
    if screen is not None:
        result["screen"] = screen

    start = time.perf_counter()
    rating = await _rate(ctx.scope("rate"), aligned, steps, learning_rate)
    _timed(times, "rate", start)
    result.update(rating)
    result["times_s"] = times
    result["bytes_sent"] = ctx.traffic().bytes_sent
    return result


async def _align(ctx: Context, own: Path, out: Path) -> pa.Table:
    """Rows of the entities all four parties hold, in one order common to all parties.

    The bank runs a two-party KKRT PSI with each partner (outputs in an order
    both sides of the pair share); it then intersects the three results and
    tells each partner which of its aligned rows to keep, in the bank's order.
    Every party learns the four-way intersection (inherent in vertical
    training); partners learn their pairwise intersection with the bank.
    """
    def job(peer: str, output: Path) -> dict[str, Any]:
        return {"input": str(own), "keys": [KEY], "peers": [peer], "receiver": "bank",
                "output": str(output), "protocol": "kkrt", "reveal": "all",
                "validate": False}  # every input was checked at the start of the job

    if ctx.party != "bank":
        pair = out / f"{ctx.party}.aligned-bank.parquet"
        await run_job(ctx.scope(ctx.party), job_from_options(job("bank", pair)))
        keep = await ctx.recv("bank", "keep")
        table = pq.read_table(pair).take(keep)
    else:
        partners = ctx.peers
        pairs = {p: out / f"bank.aligned-{p}.parquet" for p in partners}
        await asyncio.gather(*(run_job(ctx.scope(p), job_from_options(job(p, pairs[p])))
                               for p in partners))
        tables = {p: pq.read_table(pairs[p]) for p in partners}
        own_keys = pq.read_table(own, columns=[KEY]).column(KEY).combine_chunks()
        table, keep = _common_rows(own_keys, tables)
        for p in partners:
            await ctx.send(p, "keep", keep[p])
    pq.write_table(table, out / f"{ctx.party}.aligned.parquet")
    return table


def _common_rows(own_keys: pa.Array, tables: dict[str, pa.Table]
                 ) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """The bank's rows held by every partner, in the bank's file order, and each
    pair table's positions of them (vectorised: no per-row Python)."""
    held = pa.array(np.ones(len(own_keys), dtype=bool))
    for table in tables.values():
        held = pc.and_(held, pc.is_in(own_keys, value_set=table.column(KEY).combine_chunks()))
    order = own_keys.filter(held)
    keep = {
        partner: pc.index_in(order, value_set=table.column(KEY).combine_chunks())
        .to_numpy(zero_copy_only=False).astype(np.int64)
        for partner, table in tables.items()
    }
    first = next(iter(tables))
    return tables[first].take(keep[first]), keep


async def _screen(ctx: Context, data: Path, applicants: int) -> dict[str, Any] | None:
    """Bank: PIR queries to each risk-list holder. Holders: serve until the bank is done."""
    if ctx.party in RISK_LIST_HOLDERS:
        database = await asyncio.to_thread(
            load_database, data / f"{ctx.party}.risklist.parquet", KEY, None, False
        )
        await PirServer(database).serve(ctx, "bank")
        return None
    if ctx.party != "bank":
        return None
    keys = pq.read_table(data / "bank.parquet", columns=[KEY]).column(KEY).to_pylist()
    asked = keys[:applicants]
    tables = await asyncio.gather(*(query_table(ctx, h, asked) for h in RISK_LIST_HOLDERS))
    flagged: set[str] = set()
    hits = {}
    for holder, table in zip(RISK_LIST_HOLDERS, tables, strict=True):
        found = [k for k, f in zip(table.column("key").to_pylist(),
                                   table.column("found").to_pylist(), strict=True) if f]
        hits[holder] = len(found)
        flagged.update(found)
    return {"asked": len(asked), "hits": hits, "flagged": len(flagged)}


def party_features(table: pa.Table) -> np.ndarray:
    """This party's standardised feature matrix (fitted on the even rows only)."""
    columns = [c for c in table.column_names if c != KEY and c not in LABEL_COLUMNS]
    train = table.take(np.arange(0, table.num_rows, 2))
    prep = Preprocessor().fit(train, columns)
    return prep.transform(table)


async def _rate(ctx: Context, table: pa.Table, steps: int, learning_rate: float) -> dict:
    """Train the joint model on secret shares; the bank learns test scores and AUCs."""
    mine = party_features(table)
    widths = await _exchange_widths(ctx, mine.shape[1])
    rows = table.num_rows
    fixed = FixedPoint()
    if ctx.party not in COMPUTE_PARTIES:
        await _share_out(ctx, fixed, mine)
        return {"features": int(mine.shape[1])}
    backend = SecureBackend(await make_suite(ctx.subgroup(COMPUTE_PARTIES), "semi2k"), fixed)
    blocks = []
    for party in ctx.parties:
        shape = (rows, widths[party])
        if party in COMPUTE_PARTIES:
            blocks.append(await backend.input(party, mine if party == ctx.party else None, shape))
        else:
            blocks.append(await _share_in(ctx, backend, party, shape))
    x = concatenate([*blocks, backend.constant(np.ones((rows, 1)))], axis=1)
    labels = table.column(LABEL).to_numpy().astype(np.float64).reshape(-1, 1) \
        if ctx.party == "bank" else None
    y = await backend.input("bank", labels, (rows, 1))
    train, test = np.arange(0, rows, 2), np.arange(1, rows, 2)
    weights = await train_logistic(backend, x[train], y[train], steps, learning_rate)
    revealed = await (await (x[test] @ weights)).reveal(to="bank")
    if ctx.party != "bank":
        return {"features": int(mine.shape[1])}
    assert labels is not None and revealed is not None
    bank_only = fit_logistic(mine[train], labels[train, 0])
    bank_scores = predict(bank_only, mine[test])
    return {"features": int(mine.shape[1]), "joint_features": int(sum(widths.values())),
            "train_rows": len(train), "test_rows": len(test),
            "auc_joint": round(auc(labels[test, 0], revealed[:, 0]), 4),
            "auc_bank_only": round(auc(labels[test, 0], bank_scores), 4)}


async def _share_out(ctx: Context, fixed: FixedPoint, values: np.ndarray) -> None:
    """Input party: split ``values`` into two additive shares over Z_2^64 for the
    compute parties (a PRG seed to the second, the remainder to the first)."""
    ring = fixed.ring
    encoded = ring.encode(values, fixed.f)
    seed = fresh_key()
    remainder = ring.sub(encoded, ring.random(Prg(seed), values.shape, 0))
    first, second = COMPUTE_PARTIES
    await ctx.send(second, "share-seed", seed)
    await ctx.send(first, "share", remainder)


async def _share_in(ctx: Context, backend: SecureBackend, owner: str,
                    shape: tuple[int, int]) -> SecretTensor:
    """Compute party: this party's share of an input party's matrix."""
    if ctx.party == COMPUTE_PARTIES[0]:
        share = await ctx.recv(owner, "share")
        if share.shape != shape:
            raise ValueError(f"party {owner} shared a {share.shape} matrix, expected {shape}")
    else:
        share = backend.ring.random(Prg(bytes(await ctx.recv(owner, "share-seed"))), shape, 0)
    return SecretTensor(backend, share, backend.f)


async def _exchange_widths(ctx: Context, width: int) -> dict[str, int]:
    await ctx.broadcast("width", width)
    return {ctx.party: width, **await ctx.recv_all("width")}


async def train_logistic(backend: SecureBackend, x: SecretTensor, y: SecretTensor,
                         steps: int, learning_rate: float, l2: float = 1.0) -> SecretTensor:
    """Full-batch gradient descent with L2 decay: w -= lr (X^T (sigmoid(X w) - y) + l2 w) / n."""
    n, d = x.shape
    weights = backend.constant(np.zeros((d, 1)))
    decay = 1.0 - learning_rate * l2 / n
    for _ in range(steps):
        predictions = await (await (x @ weights)).sigmoid()
        gradient = await (x.T @ (predictions - y))
        weights = await (weights * decay) - await (gradient * (learning_rate / n))
    return weights
