"""``supervision.green``: green-credit portfolios of several banks scored jointly.

Four shared indicators per bank, each scored in public bands (the job's ``indicators``):

- green loan share (green / all lending of the year), higher is better;
- growth of green lending over the previous year, higher is better;
- non-performing ratio of green loans, lower is better;
- carbon intensity of the financed firms (amount-weighted over the green loans to firms
  the government's environmental data covers), lower is better.

The first three a bank computes alone from its own loans; it secret-shares their band
points (not the values) between the regulator and a co-aggregating bank, as fund-flow
does. The carbon indicator needs the government's per-firm intensities, which stay secret:
over a public list of firms (the enterprise registry), each bank shares its green amount
per firm and the government shares (intensity, covered) per firm; the compute parties
form ``num = sum a_i c_i`` and ``den = sum a_i h_i`` for every bank in one secure matrix
product and compare ``t_j * den - num`` with each public band threshold ``t_j`` (sign
bits, no division). Only the total score is opened: to the regulator for every bank
(with the ranking; per-indicator points too when ``publish: points``), and to each bank
its own. Leakage and costs: protocols/supervision-green.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.data.loaders import load_table
from meshmpc.errors import DataError
from meshmpc.jobs.api import StepContext, StepOutput
from meshmpc.jobs.errors import JobError
from meshmpc.mpc.factory import make_suite
from meshmpc_supervision.fundflow import exact_sums
from meshmpc_supervision.sharing import RING, collect, receive_share, roles, share_out

LOCAL = ("green_share", "growth", "npl_ratio")
"""Indicators a bank scores alone, in the order their points travel."""
INDICATORS = (*LOCAL, "carbon_intensity")
LIMIT = 2**62
"""|t * den - num| must stay below this for the sign bit over Z_2^64 to be the comparison."""


@dataclass(frozen=True)
class Bands:
    """Public scoring bands of one indicator: ``points[j]`` for meeting ``thresholds[j]``
    (at least it when ``higher``, at most it otherwise); points add up."""

    higher: bool
    thresholds: tuple[float, ...]
    points: tuple[int, ...]

    def score(self, value: float | None) -> int:
        """The points of a plaintext value (None: not defined, no points)."""
        if value is None:
            return 0
        met = [(value >= t) if self.higher else (value <= t) for t in self.thresholds]
        return int(sum(p for p, ok in zip(self.points, met, strict=True) if ok))


DEFAULT_BANDS: dict[str, dict[str, Any]] = {
    "green_share": {"direction": "higher", "thresholds": [0.10, 0.20, 0.30],
                    "points": [10, 10, 10]},
    "growth": {"direction": "higher", "thresholds": [0.0, 0.10, 0.25], "points": [5, 10, 10]},
    "npl_ratio": {"direction": "lower", "thresholds": [0.03, 0.015, 0.005],
                  "points": [5, 5, 5]},
    "carbon_intensity": {"direction": "lower", "thresholds": [900, 600, 300],
                         "points": [5, 10, 10]},
}
"""Carbon intensity in kg CO2e per 10,000 yuan of revenue (the government's unit)."""


async def green(step: StepContext, inputs: Mapping[str, Any], params: Mapping[str, Any]
                ) -> StepOutput:
    """The job component (see the module docstring)."""
    plan = _plan(step, params)
    firms = firm_universe(_public_path(step, params, "firms"))
    ctx = step.ctx.scope("green")
    size = len(firms) + len(LOCAL)
    own, mine = None, None
    if step.party in plan["banks"]:
        mine, vector = bank_side(step, plan, firms)
        own = await share_out(ctx, step.party, vector, plan)
    elif step.party == plan["government"]:
        await share_out(ctx, step.party, government_side(step, plan, firms), plan)
    opened: dict[str, np.ndarray | None] = {}
    if step.party in plan["suite_parties"]:
        opened = await _score(ctx, plan, own, size, len(firms), params)
    elif step.party in plan["banks"]:
        opened = {"own": await _receive_own(ctx, plan)}
    if step.party == plan["regulator"]:
        table = _ranking(plan, opened)
        from meshmpc_supervision.report import write_green_report

        out = StepOutput(tables={"green_scores": table},
                         report={"role": "regulator", "banks": len(plan["banks"])})
        out.files.append(write_green_report(table, plan, step.workdir))
        return out
    if mine is None:
        role = "government" if step.party == plan["government"] else "compute"
        return StepOutput(report={"role": role, "learnt": "nothing"})
    score = opened.get("own")
    assert score is not None
    mine["score"] = int(score.view(np.int64)[0])
    mine["points_carbon_intensity"] = mine["score"] - sum(
        mine[f"points_{name}"] for name in LOCAL)
    return StepOutput(tables={"my_green_score": pa.table({k: [v] for k, v in mine.items()})},
                      report={"role": "bank", "score": mine["score"]})


# ----- the job's settings -----------------------------------------------------------------

def _plan(step: StepContext, params: Mapping[str, Any]) -> dict[str, Any]:
    government = str(params.get("government", ""))
    if government not in step.step_parties:
        raise JobError(step.party, step.step_id, f"params.government {government!r} is not a "
                       f"party of the step ({', '.join(step.step_parties)})")
    regulator, banks, co = roles(step, params, "green-finance evaluation",
                                 not_banks=(government,))
    security = str(params.get("security") or step.options.get("security")
                   or "dishonest-majority")
    suite_parties = [regulator, co]
    if security == "honest-majority":  # rep3: the government joins the two compute parties
        suite_parties.append(government)
    elif security != "dishonest-majority":
        raise JobError(step.party, step.step_id, f"security {security!r}: use "
                       "dishonest-majority (semi2k, two parties) or honest-majority (rep3)")
    publish = str(params.get("publish") or "score")
    if publish not in ("score", "points"):
        raise JobError(step.party, step.step_id, f"params.publish {publish!r}: use score "
                       "(the total only) or points (also each indicator's points)")
    year = params.get("year")
    if not isinstance(year, int):
        raise JobError(step.party, step.step_id, "params.year: the evaluated year (an "
                       "integer, e.g. 2025) is missing")
    return {"regulator": regulator, "banks": banks, "co": co, "government": government,
            "compute": [regulator, co], "suite_parties": suite_parties, "security": security,
            "publish": publish, "year": year,
            "bands": parse_bands(step, params.get("indicators") or {}),
            "max_intensity": int(params.get("max_intensity", 100_000))}


def parse_bands(step: StepContext, given: Mapping[str, Any]) -> dict[str, Bands]:
    """The four indicators' bands: the defaults, overridden per indicator by the job."""
    unknown = sorted(set(given) - set(INDICATORS))
    if unknown:
        raise JobError(step.party, step.step_id, f"params.indicators.{unknown[0]}: unknown "
                       f"indicator (use {', '.join(INDICATORS)})")
    bands = {}
    for name in INDICATORS:
        spec = {**DEFAULT_BANDS[name], **dict(given.get(name) or {})}
        where = f"params.indicators.{name}"
        if spec["direction"] not in ("higher", "lower"):
            raise JobError(step.party, step.step_id, f"{where}.direction: higher or lower")
        thresholds, points = list(spec["thresholds"]), list(spec["points"])
        if len(thresholds) != len(points) or not thresholds:
            raise JobError(step.party, step.step_id, f"{where}: thresholds and points need "
                           "the same (non-zero) length")
        if any(not isinstance(p, int) or p < 0 for p in points):
            raise JobError(step.party, step.step_id, f"{where}.points: whole numbers >= 0")
        if name == "carbon_intensity" and any(t != int(t) or t < 0 for t in thresholds):
            raise JobError(step.party, step.step_id, f"{where}.thresholds: whole numbers "
                           ">= 0 (kg CO2e per 10,000 yuan)")
        bands[name] = Bands(spec["direction"] == "higher",
                            tuple(float(t) for t in thresholds), tuple(points))
    return bands


def _public_path(step: StepContext, params: Mapping[str, Any], key: str) -> Path:
    text = params.get(key)
    if not text:
        raise JobError(step.party, step.step_id, f"params.{key}: the public list of firms "
                       "(column credit_code, e.g. the enterprise registry) is missing")
    path = Path(str(text))
    base = step.options.get("job_dir")
    return path if path.is_absolute() or base is None else Path(base) / path


def firm_universe(path: Path) -> np.ndarray:
    """The public firms, sorted and unique: the same index at every party."""
    table = load_table(path, columns=["credit_code"])
    return np.unique(_strings(table, "credit_code"))


def _strings(table: pa.Table, column: str) -> np.ndarray:
    return pc.cast(table.column(column), pa.string()).to_numpy(
        zero_copy_only=False).astype(str)


def _positions(firms: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into ``firms``, known) of each code."""
    at = np.searchsorted(firms, codes)
    known = (at < len(firms)) & (firms[np.minimum(at, len(firms) - 1)] == codes)
    return np.minimum(at, max(len(firms) - 1, 0)), known


# ----- a bank's and the government's side -------------------------------------------------

def bank_side(step: StepContext, plan: Mapping[str, Any], firms: np.ndarray
              ) -> tuple[dict[str, Any], np.ndarray]:
    """(this bank's own figures, the vector it shares: green amount in yuan per public firm
    of the evaluated year, then its points of the three local indicators)."""
    source = step.me.data
    if not source:
        raise JobError(step.party, step.step_id, f"parties.{step.party}.data is missing")
    table = load_table(source, columns=["credit_code", "year", "amount_fen", "green", "npl"])
    year = table.column("year").to_numpy(zero_copy_only=False).astype(np.int64)
    amount = table.column("amount_fen").to_numpy(zero_copy_only=False).astype(np.int64)
    green_loan = table.column("green").to_numpy(zero_copy_only=False).astype(bool)
    npl = table.column("npl").to_numpy(zero_copy_only=False).astype(bool)
    bad = np.flatnonzero(amount < 0)
    if bad.size:
        raise DataError(f"party {step.party}, file {source}, column amount_fen, row "
                        f"{bad[0] + 1}: negative amount")
    now, before = year == plan["year"], year == plan["year"] - 1
    if not now.any():
        raise DataError(f"party {step.party}, file {source}, column year: no loans of "
                        f"{plan['year']} (the job's params.year)")
    total = int(amount[now].sum())
    green_now = int(amount[now & green_loan].sum())
    green_before = int(amount[before & green_loan].sum())
    green_npl = int(amount[now & green_loan & npl].sum())
    values = {"green_share": green_now / total if total else None,
              "growth": green_now / green_before - 1 if green_before else None,
              "npl_ratio": green_npl / green_now if green_now else None}
    bands = plan["bands"]
    points = [bands[name].score(values[name]) for name in LOCAL]
    at, known = _positions(firms, _strings(table, "credit_code"))
    chosen = now & green_loan & known
    per_firm = exact_sums(at[chosen], amount[chosen], len(firms)) // 100  # in yuan
    bound = max(plan["max_intensity"], *bands["carbon_intensity"].thresholds)
    if int(per_firm.sum()) * bound >= LIMIT:
        raise DataError(f"party {step.party}, file {source}, column amount_fen: green "
                        f"lending of {int(per_firm.sum()):,} yuan times intensities up to "
                        f"{bound:,.0f} would overflow the 64-bit ring; lower "
                        "params.max_intensity")
    covered = int(amount[chosen].sum())
    mine: dict[str, Any] = {"institution": step.party, "year": plan["year"],
                            **{name: values[name] for name in LOCAL},
                            "green_amount_fen": green_now,
                            "registry_coverage": covered / green_now if green_now else None,
                            **{f"points_{name}": p for name, p in zip(LOCAL, points,
                                                                      strict=True)}}
    return mine, np.concatenate([per_firm, np.array(points, dtype=np.int64)])


def government_side(step: StepContext, plan: Mapping[str, Any], firms: np.ndarray
                    ) -> np.ndarray:
    """The vector the government shares: per public firm (intensity, covered)."""
    source = step.me.data
    if not source:
        raise JobError(step.party, step.step_id, f"parties.{step.party}.data is missing")
    column = "carbon_kg_per_10k_yuan"
    table = load_table(source, columns=["credit_code", column])
    value = table.column(column).to_numpy(zero_copy_only=False)
    if np.issubdtype(value.dtype, np.floating) and np.isnan(value).any():
        row = int(np.flatnonzero(np.isnan(value))[0])
        raise DataError(f"party {step.party}, file {source}, column {column}, row {row + 1}:"
                        " missing value (leave the firm out instead)")
    value = np.rint(value).astype(np.int64)
    wrong = np.flatnonzero((value < 0) | (value > plan["max_intensity"]))
    if wrong.size:
        raise DataError(f"party {step.party}, file {source}, column {column}, row "
                        f"{wrong[0] + 1}: {value[wrong[0]]} is outside 0..{plan['max_intensity']}"
                        " (params.max_intensity)")
    at, known = _positions(firms, _strings(table, "credit_code"))
    vector = np.zeros((len(firms), 2), dtype=np.int64)
    vector[at[known], 0] = value[known]
    vector[at[known], 1] = 1
    return vector


# ----- the compute parties ----------------------------------------------------------------

async def _score(ctx: Any, plan: Mapping[str, Any], own: np.ndarray | None, size: int,
                 n_firms: int, params: Mapping[str, Any]) -> dict[str, np.ndarray | None]:
    """Run the suite: every bank's total score (and points) opened as the plan says."""
    party = ctx.party
    banks = plan["banks"]
    share_banks = share_gov = None
    if party in plan["compute"]:
        _, per_bank = await collect(ctx, party, plan, own, (size,))
        share_banks = np.stack([per_bank[b] for b in banks])
        share_gov = await receive_share(ctx, party, plan, plan["government"], (n_firms, 2))
    suite = await _suite(ctx, plan, params)
    amounts = await _input(suite, plan, party, share_banks, (len(banks), size))
    gov = await _input(suite, plan, party, share_gov, (n_firms, 2))
    firms_part = suite.lift(lambda a: np.ascontiguousarray(a[:, :n_firms]), amounts)
    local = suite.lift(lambda a: np.ascontiguousarray(a[:, n_firms:]), amounts)
    products = await suite.matmul(firms_part, gov)  # (banks, 2): num, den
    carbon = await carbon_points(suite, products, plan["bands"]["carbon_intensity"])
    local_sum = suite.lift(lambda a: RING.from_int(a.view(np.int64).sum(axis=1)), local)
    total = suite.add(local_sum, carbon)
    opened: dict[str, np.ndarray | None] = {
        "scores": await suite.reveal(total, to=plan["regulator"])}
    if plan["publish"] == "points":
        opened["local"] = await suite.reveal(local, to=plan["regulator"])
        opened["carbon"] = await suite.reveal(carbon, to=plan["regulator"])
    opened["own"] = await _open_own(ctx, suite, plan, total)
    return opened


async def _suite(ctx: Any, plan: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    group = ctx.subgroup(plan["suite_parties"])
    if plan["security"] == "dishonest-majority":
        triples = str(params.get("triples") or "ot")
        return await make_suite(group, "semi2k", triples="ot" if triples == "none" else triples)
    return await make_suite(group, "rep3", triples="none")


async def _input(suite: Any, plan: Mapping[str, Any], party: str, share: np.ndarray | None,
                 shape: tuple[int, ...]) -> Any:
    """The two compute parties' additive shares as a sharing of the suite."""
    if plan["security"] == "dishonest-majority":
        return share
    parts = [await suite.input(owner, share if owner == party else None, shape)
             for owner in plan["compute"]]
    return suite.add(parts[0], parts[1])


async def carbon_points(suite: Any, products: Any, bands: Bands) -> Any:
    """Shares of each bank's carbon points from shares of (num, den): threshold j is met
    when ``t_j den - num >= 0``; a bank with no covered green lending (den = 0) gets none,
    through ``msb(den - 1)`` subtracting the full points (linear: no products)."""
    t = RING.from_int(np.array(bands.thresholds, dtype=np.int64)[None, :])

    def differences(p: np.ndarray) -> np.ndarray:
        num, den = p[:, 0:1], p[:, 1:2]
        return np.ascontiguousarray(RING.sub(RING.mul(den, t), num))

    gaps = suite.lift(differences, products)
    den = suite.lift(lambda p: np.ascontiguousarray(p[:, 1:2]), products)
    den_less_one = suite.add_public(den, RING.from_int(np.full((den_shape(suite, den), 1), -1)))
    signs = await suite.msb(suite.lift(lambda a, b: np.concatenate([a, b], axis=1),
                                       gaps, den_less_one))
    weights = np.array([*bands.points, sum(bands.points)], dtype=np.int64)
    missed = suite.lift(lambda s: RING.from_int(
        (s.view(np.int64) * weights[None, :]).sum(axis=1)), signs)
    full = RING.from_int(np.full(den_shape(suite, den), sum(bands.points)))
    return suite.add_public(suite.lift(RING.neg, missed), full)


def den_shape(suite: Any, x: Any) -> int:
    """The number of banks (rows) of a shared (banks, k) array."""
    return int(suite.components(x)[0].shape[0])


async def _open_own(ctx: Any, suite: Any, plan: Mapping[str, Any], total: Any
                    ) -> np.ndarray | None:
    """Each bank's own total opened to it alone; returns this party's, if a bank."""
    mine = None
    for k, bank in enumerate(plan["banks"]):
        one = suite.lift(lambda a, k=k: np.ascontiguousarray(a[k:k + 1]), total)
        if bank in plan["suite_parties"]:
            value = await suite.reveal(one, to=bank)
            mine = value if value is not None else mine
        else:
            for part in suite.components(one)[:1]:
                await ctx.send(bank, "own-score", part)
    return mine


async def _receive_own(ctx: Any, plan: Mapping[str, Any]) -> np.ndarray:
    """A bank outside the suite: its total, summed from the suite parties' parts."""
    total = RING.zeros((1,))
    for sender in plan["suite_parties"]:
        part = await ctx.recv(sender, "own-score")
        if not isinstance(part, np.ndarray) or part.shape != (1,):
            raise JobError(ctx.party, "green", f"{sender} sent a part of the wrong shape")
        total = RING.add(total, part.astype(np.uint64, copy=False))
    return total


# ----- the regulator's table --------------------------------------------------------------

def _ranking(plan: Mapping[str, Any], opened: Mapping[str, np.ndarray | None]) -> pa.Table:
    scores = opened["scores"]
    assert scores is not None
    value = scores.view(np.int64)
    rank = 1 + np.array([(value > v).sum() for v in value])  # ties share the better rank
    columns: dict[str, Sequence[Any]] = {"institution": plan["banks"], "score": value.tolist(),
                                         "rank": rank.tolist()}
    if plan["publish"] == "points":
        local, carbon = opened["local"], opened["carbon"]
        assert local is not None and carbon is not None
        for j, name in enumerate(LOCAL):
            columns[f"points_{name}"] = local.view(np.int64)[:, j].tolist()
        columns["points_carbon_intensity"] = carbon.view(np.int64).tolist()
    return pa.table(columns).sort_by([("rank", "ascending"), ("institution", "ascending")])
