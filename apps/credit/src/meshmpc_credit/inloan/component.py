"""The ``credit.inloan`` job component: monthly receiver-only monitoring of the loan book.

Every partner (gov, fin, telco) computes its behaviour points and flags for
every firm it holds and every month (:mod:`.signals`), masks the points with
pairwise PRF masks that cancel in the sum over partners
(:func:`meshmpc.ml.predict.key_masks`, version ``month-<m>``) and publishes an
OPRF-sealed table (:mod:`.feed`) that the bank opens for its own loans only.
No partner receives anything that depends on the bank's book beyond its
public padded size. The bank adds the masked words to its own points: it
learns each loan's joint score (not a partner's part), each partner's flags
for its loans, and which partners do not hold a loan. Partners also send the
month-over-month PSI of their own columns over their whole population.

Params (public): ``pad_to`` (book size padded for the OPRF set-up; default the
next power of two), ``score_drop`` (40), ``grade_drop`` (2), ``cutoffs``.
Party fields: ``monthly`` (default ``<data>.monthly.parquet`` beside the data),
``risklist`` (partners, default ``<party>.risklist.parquet`` beside the data).
Bank outputs: tables ``monitor`` (loan x month: score, grade, flags,
decision), ``alerts``; report ``{"loans", "months", "unscored", "by_month",
"score_psi", "feature_psi"}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from meshmpc.crypto.oprf import OprfKey
from meshmpc.jobs.api import StepContext, StepOutput
from meshmpc.ml.predict import FRAC_BITS, key_masks, pairwise_seeds
from meshmpc.mpc.ring import RING64
from meshmpc.net import Context
from meshmpc_credit.inloan import feed
from meshmpc_credit.inloan.monitor import (
    DECISIONS,
    GRADES,
    MonitorParams,
    alert_table,
    alerts,
    decisions,
    drift_level,
    grades,
    psi_by_month,
)
from meshmpc_credit.inloan.signals import (
    COLUMNS,
    MonitorInputError,
    bank_points,
    list_hits,
    partner_points,
    read_monthly,
)

PARAMS = ("pad_to", "score_drop", "grade_drop", "cutoffs")


def _path(step: StepContext, field: str, suffix: str) -> Path | None:
    declared = step.me.extra.get(field)
    if declared:
        path = Path(str(declared))
        return path if path.is_absolute() else Path(step.options.get("job_dir", ".")) / path
    if not step.me.data:
        return None
    data = Path(step.me.data)
    return data.with_name(f"{data.name.split('.')[0]}.{suffix}.parquet")


def _params(step: StepContext, params: Mapping[str, Any]) -> MonitorParams:
    unknown = [k for k in params if k not in PARAMS]
    if unknown:
        raise MonitorInputError(f"step {step.step_id!r} (credit.inloan): unknown param "
                                f"{unknown[0]!r}; known: {', '.join(PARAMS)}")
    out = MonitorParams(score_drop=float(params.get("score_drop", 40.0)),
                        grade_drop=int(params.get("grade_drop", 2)))
    if "cutoffs" in params:
        out.cutoffs = tuple(float(c) for c in params["cutoffs"])
    return out


def records_of(words: npt.NDArray[np.uint64],
               flags: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Fixed-width records: masked word (8 bytes, little endian), flag byte, zero padding."""
    out = np.zeros((words.size, feed.RECORD_BYTES), np.uint8)
    out[:, :8] = words.astype("<u8").view(np.uint8).reshape(-1, 8)
    out[:, 8] = flags
    return out


async def publish(ctx: Context, step: StepContext, bank: str, partners: list[str]) -> dict:
    """Partner side: set-up answer, then one sealed table per month."""
    path = _path(step, "monthly", "monthly")
    if path is None:
        raise MonitorInputError(f"party {step.party}: credit.inloan needs parties."
                                f"{step.party}.monthly (or data beside it)")
    data = read_monthly(step.party, path)
    points, flags = partner_points(data)
    flags = flags | list_hits(step.party, _path(step, "risklist", "risklist"), data.keys,
                              data.months)
    key = OprfKey.generate()
    seeds = await pairwise_seeds(ctx.scope("seeds"), partners)
    ctx = ctx.scope(step.party)
    pad_to = int(await ctx.recv(bank, "pad_to"))
    own_rows = asyncio.create_task(asyncio.to_thread(key.evaluate_rows,
                                                     feed.key_items(data.keys)))
    await feed.answer_book(ctx.scope("setup"), bank, key, pad_to)  # own rows meanwhile
    prf_rows = await own_rows
    for m in range(1, data.months + 1):
        masks = key_masks(data.keys, seeds, step.party, partners, f"month-{m}")
        words = RING64.add(RING64.encode(points[:, m - 1], FRAC_BITS), masks)
        tags, sealed = feed.seal_month(prf_rows, records_of(words, flags[:, m - 1]), m)
        await feed.send_month(ctx.scope("feed"), bank, tags, sealed, m)
    feature_psi = {c: psi_by_month(v) for c, v in data.values.items()}
    await ctx.send(bank, "feature_psi", feature_psi)
    return {"firms": len(data.keys), "months": data.months, "pad_to": pad_to}


async def _open_partner(ctx: Context, partner: str, keys: pa.Array, pad_to: int,
                        months: int, book: feed.BlindedBook
                        ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint64],
                                   npt.NDArray[np.uint8], dict]:
    await ctx.send(partner, "pad_to", pad_to)
    prf_rows = await feed.open_book(ctx.scope("setup"), partner, keys, pad_to, book)
    found = np.ones((len(keys), months), bool)
    words = np.zeros((len(keys), months), np.uint64)
    flags = np.zeros((len(keys), months), np.uint8)
    for m in range(1, months + 1):
        tags, sealed = await feed.recv_month(ctx.scope("feed"), partner, m)
        hit, records = feed.open_month(prf_rows, tags, sealed, m)
        found[:, m - 1] = hit
        words[:, m - 1] = np.ascontiguousarray(records[:, :8]).view("<u8").ravel()
        flags[:, m - 1] = records[:, 8]
    feature_psi = await ctx.recv(partner, "feature_psi")
    return found, words, flags, feature_psi


async def collect(ctx: Context, step: StepContext, partners: list[str],
                  params: MonitorParams, pad_to: int | None) -> StepOutput:
    """Bank side: open every partner's feed for the book, score, alert, decide."""
    path = _path(step, "monthly", "monthly")
    if path is None:
        raise MonitorInputError(f"party {step.party}: credit.inloan needs parties."
                                f"{step.party}.monthly (or data beside it)")
    data = read_monthly(step.party, path)
    n = len(data.keys)
    size = pad_to or 1 << max(n - 1, 1).bit_length()
    book = await asyncio.to_thread(feed.blind_book, data.keys, size)  # shared by partners
    opened = await asyncio.gather(*[
        _open_partner(ctx.scope(p), p, data.keys, size, data.months, book) for p in partners])
    found = np.logical_and.reduce([o[0] for o in opened])
    total = np.zeros((n, data.months), np.uint64)
    flags = np.zeros((n, data.months), np.uint8)
    for _, words, partner_flags, _ in opened:
        total = RING64.add(total, words)
        flags |= partner_flags
    joint = RING64.decode(total.ravel(), FRAC_BITS).reshape(n, data.months)
    score = np.where(found, bank_points(data) + joint, np.nan)
    feature_psi = {p: o[3] for p, o in zip(partners, opened, strict=True)}
    return _bank_output(data.keys, score, flags, params, feature_psi, found)


def _bank_output(keys: pa.Array, score: npt.NDArray[np.float64], flags: npt.NDArray[np.uint8],
                 params: MonitorParams, feature_psi: dict, found: npt.NDArray[np.bool_]
                 ) -> StepOutput:
    raised = alerts(score, flags, params)
    decided = decisions(raised, flags)
    grade = grades(score, params.cutoffs)
    n, months = score.shape
    monitor = pa.table({
        "credit_code": keys.take(pa.array(np.repeat(np.arange(n), months))),
        "month": pa.array(np.tile(np.arange(1, months + 1), n), pa.int32()),
        "score": score.ravel(), "grade": np.array([*GRADES, "?"])[grade.ravel()],
        "flags": flags.ravel(), "decision": np.array(DECISIONS)[decided.ravel()]})
    score_psi = psi_by_month(score, params.psi_bins)
    by_month = [{"month": m + 1,
                 **{k: int(v[:, m].sum()) for k, v in raised.items()},
                 **{d: int((decided[:, m] == i).sum()) for i, d in enumerate(DECISIONS)},
                 "grades": {g: int((grade[:, m] == i).sum()) for i, g in enumerate(GRADES)}}
                for m in range(months)]
    report = {"loans": n, "months": months, "unscored": int((~found).any(axis=1).sum()),
              "by_month": by_month,
              "score_psi": [{"month": m + 1, "psi": v, "drift": drift_level(v)}
                            for m, v in enumerate(score_psi)],
              "feature_psi": {f"{p}.{c}": v for p, cols in feature_psi.items()
                              for c, v in cols.items()}}
    return StepOutput(tables={"monitor": monitor,
                              "alerts": alert_table(keys, score, flags, params)},
                      report=report)


async def inloan(step: StepContext, inputs: Mapping[str, StepOutput],
                 params: Mapping[str, Any]) -> StepOutput:
    """``credit.inloan`` (see the module docstring)."""
    settings = _params(step, params)
    bank = step.label_holder or "bank"
    partners = [p for p in step.step_parties if p != bank and p in COLUMNS]
    ctx = step.ctx.scope("inloan")
    if step.party == bank:
        pad_to = params.get("pad_to")
        return await collect(ctx, step, partners, settings,
                             None if pad_to is None else int(pad_to))
    if step.party not in partners:
        return StepOutput()
    report = await publish(ctx, step, bank, partners)
    return StepOutput(report=report)
