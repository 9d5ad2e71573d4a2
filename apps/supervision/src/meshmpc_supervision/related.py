"""``supervision.related``: groups of related enterprises that borrow at several banks.

The business registry's shareholding and legal-representative links are public, so every
party computes the same groups (connected components of the registry graph, in C through
scipy); what stays private is each bank's borrowers and exposures. Then:

1. each bank totals, per group, its exposure and whether it lends to the group at all
   (local), and secret-shares both vectors between the regulator and a co-aggregator
   (a PRG seed to the regulator, the rest to the co-aggregator, as in fund-flow);
2. the two compute parties add the shares, then compute in semi2k (OT-made triples, no
   dealer) ``q = C (C - 1)`` of the bank count ``C`` and ``W = E q`` of the exposure ``E``,
   and open both to the regulator alone: ``q`` is 0 exactly for groups with fewer than
   two lending banks, whose exposure ``W`` then stays hidden; otherwise the regulator
   recovers ``C`` and ``E = W / q``;
3. for each bank b the compute parties form ``(W * 256 + q) * h_b`` (``h_b`` its lending
   flags, one secure product per bank and group) and open it to b alone: b learns the
   totals of exactly the multi-bank groups it lends to, and no one learns which groups
   those are.

Firms with no registry link are not groups and are left out. Leakage and costs:
protocols/supervision-related.md.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from meshmpc_supervision.sharing import RING, collect, roles, share_out

PACK = 256
"""W and q travel packed as W * PACK + q: q = C (C - 1) < PACK for up to 16 banks."""


async def related(step: StepContext, inputs: Mapping[str, Any], params: Mapping[str, Any]
                  ) -> StepOutput:
    """The job component (see the module docstring)."""
    plan = _plan(step, params)
    groups = registry_groups(_registry_path(step, params))
    ctx = step.ctx.scope("related")
    mine = None
    own = None
    if step.party in plan["banks"]:
        mine, vectors = _bank_vectors(step, groups)
        own = await share_out(ctx, step.party, vectors, plan)
    totals = None
    opened = None
    size = len(groups["keys"])
    if step.party in plan["suite_parties"]:
        share: np.ndarray | None = None
        per_bank: dict[str, np.ndarray] = {}
        if step.party in plan["compute"]:
            share, per_bank = await collect(ctx, step.party, plan, own, (size, 2))
        suite, share = await _suite_shares(ctx, plan, share, size, params)
        q, w = await _products(suite, share)
        totals = await _multi_bank_totals(suite, q, w, plan["regulator"])
        opened = await _open_per_bank(ctx, suite, plan, q, w, per_bank, size)
    if step.party == plan["regulator"]:
        assert totals is not None
        table = _group_table(groups, *totals)
        out = StepOutput(tables={"related_groups": table},
                         report={"role": "regulator", "groups": size,
                                 "multi_bank_groups": table.num_rows})
        from meshmpc_supervision.report import write_related_report

        out.files.append(write_related_report(table, size, len(plan["banks"]), step.workdir))
        return out
    if mine is None:
        return StepOutput(report={"role": "co-aggregator", "learnt": "nothing"})
    packed = opened if opened is not None else await _receive_own(ctx, plan, size)
    found = _own_groups(groups, packed)
    return StepOutput(tables={"my_related_groups": found},
                      report={"role": "bank", "my_groups": len(mine),
                              "multi_bank_groups_of_mine": found.num_rows})


def _plan(step: StepContext, params: Mapping[str, Any]) -> dict[str, Any]:
    regulator, banks, co = roles(step, params, "related-party analysis", max_banks=16)
    security = str(params.get("security") or step.options.get("security")
                   or "dishonest-majority")
    suite_parties = [regulator, co]
    if security == "honest-majority":  # rep3: a second bank joins the two compute parties
        suite_parties.append(next(b for b in banks if b != co))
    elif security != "dishonest-majority":
        raise JobError(step.party, step.step_id, f"security {security!r}: use "
                       "dishonest-majority (semi2k, two parties) or honest-majority (rep3)")
    return {"regulator": regulator, "banks": banks, "co": co, "compute": [regulator, co],
            "suite_parties": suite_parties, "security": security}


def _registry_path(step: StepContext, params: Mapping[str, Any]) -> Path:
    text = params.get("registry")
    if not text:
        raise JobError(step.party, step.step_id, "params.registry: the public registry "
                       "links file (columns a, b: credit codes) is missing")
    path = Path(str(text))
    base = step.options.get("job_dir")
    return path if path.is_absolute() or base is None else Path(base) / path


# ----- the public groups ------------------------------------------------------------------

def registry_groups(path: Path) -> dict[str, Any]:
    """Connected components of the registry graph: every firm's group index, each group's
    key (its smallest credit code) and size, identical on every party."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    links = load_table(path, columns=["a", "b"])
    a = pc.cast(links.column("a"), pa.string()).to_numpy(zero_copy_only=False).astype(str)
    b = pc.cast(links.column("b"), pa.string()).to_numpy(zero_copy_only=False).astype(str)
    firms, index = np.unique(np.concatenate([a, b]), return_inverse=True)
    n = len(firms)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (index[: len(a)], index[len(a):])),
                       shape=(n, n))
    count, label = connected_components(graph, directed=False)
    first = np.full(count, n, dtype=np.int64)
    np.minimum.at(first, label, np.arange(n))  # firms are sorted: the first is the smallest
    order = np.argsort(first)  # groups numbered by their key, the same on every party
    rank = np.empty(count, dtype=np.int64)
    rank[order] = np.arange(count)
    return {"firms": firms, "group_of": rank[label], "keys": firms[first[order]],
            "sizes": np.bincount(rank[label], minlength=count)}


# ----- a bank's side ----------------------------------------------------------------------

def _bank_vectors(step: StepContext, groups: Mapping[str, Any]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(this bank's group indices, (groups, 2) totals: exposure, 1 if it lends there)."""
    source = step.me.data
    if not source:
        raise JobError(step.party, step.step_id, f"parties.{step.party}.data is missing")
    table = load_table(source, columns=["credit_code", "exposure_fen"])
    codes = pc.cast(table.column("credit_code"), pa.string()).to_numpy(
        zero_copy_only=False).astype(str)
    exposure = table.column("exposure_fen").to_numpy(zero_copy_only=False).astype(np.int64)
    bad = np.flatnonzero(exposure < 0)
    if bad.size:
        raise DataError(f"party {step.party}, file {source}, column exposure_fen, row "
                        f"{bad[0] + 1}: negative exposure")
    firms = groups["firms"]
    at = np.searchsorted(firms, codes)
    known = (at < len(firms)) & (firms[np.minimum(at, len(firms) - 1)] == codes)
    group = groups["group_of"][at[known]]
    size = len(groups["keys"])
    vectors = np.zeros((size, 2), dtype=np.int64)
    vectors[:, 0] = exact_sums(group, exposure[known], size)
    vectors[:, 1] = np.bincount(group, minlength=size) > 0
    return np.unique(group), vectors


# ----- the compute parties ----------------------------------------------------------------

async def _suite_shares(ctx: Any, plan: Mapping[str, Any], share: np.ndarray | None,
                        size: int, params: Mapping[str, Any]) -> tuple[Any, Any]:
    """The suite and this party's sharing of the (groups, 2) totals in it: semi2k keeps the
    two additive shares as they are; rep3 re-shares both among its three parties."""
    group = ctx.subgroup(plan["suite_parties"])
    if plan["security"] == "dishonest-majority":
        triples = str(params.get("triples") or "ot")
        suite = await make_suite(group, "semi2k", triples="ot" if triples == "none" else triples)
        return suite, share
    suite = await make_suite(group, "rep3", triples="none")
    me = ctx.party
    parts = [await suite.input(owner, share if owner == me else None, (size, 2))
             for owner in plan["compute"]]
    return suite, suite.add(parts[0], parts[1])


async def _open_per_bank(ctx: Any, suite: Any, plan: Mapping[str, Any], q: Any, w: Any,
                         per_bank: Mapping[str, np.ndarray], size: int) -> np.ndarray | None:
    """For each bank b, ``(W * PACK + q) * h_b`` (W and q as opened to the regulator,
    ``h_b`` its lending flags) opened to b alone: the totals of the multi-bank groups it
    lends to, zero elsewhere. One secure product per bank and group (semi2k: OT-made
    triples; rep3: the two additive shares of ``h_b`` re-shared first). Returns what was
    opened to this party (a bank among the suite's parties), else None."""
    packed = suite.add(suite.mul_public(w, RING.from_int(np.full(size, PACK))), q)
    mine_opened = None
    for bank in plan["banks"]:
        flags = await _flags(suite, plan, ctx.party, per_bank.get(bank), size)
        mine = await suite.mul(packed, flags)
        if bank in plan["suite_parties"]:
            value = await suite.reveal(mine, to=bank)
            mine_opened = value if value is not None else mine_opened
        else:  # each rep3 party sends its first component: x_0 + x_1 + x_2 at the bank
            await ctx.send(bank, "own-groups", suite.components(mine)[0])
    return mine_opened


async def _flags(suite: Any, plan: Mapping[str, Any], party: str, share: np.ndarray | None,
                 size: int) -> Any:
    """One bank's lending flags as a sharing of the suite."""
    mine = None if share is None else np.ascontiguousarray(share[:, 1])
    if plan["security"] == "dishonest-majority":
        return mine  # the compute parties' additive shares are semi2k's sharing
    parts = [await suite.input(owner, mine if owner == party else None, (size,))
             for owner in plan["compute"]]
    return suite.add(parts[0], parts[1])


async def _receive_own(ctx: Any, plan: Mapping[str, Any], size: int) -> np.ndarray:
    """A bank outside the three: its packed totals, summed from the three parts."""
    party = ctx.party
    parts = [await ctx.recv(p, "own-groups") for p in plan["suite_parties"]]
    total = RING.zeros((size,))
    for part in parts:
        if not isinstance(part, np.ndarray) or part.shape != (size,):
            raise JobError(party, "related", "a compute party sent a part of the wrong shape")
        total = RING.add(total, part.astype(np.uint64, copy=False))
    return total


def _own_groups(groups: Mapping[str, Any], packed: np.ndarray) -> pa.Table:
    value = packed.view(np.int64)
    q = value % PACK
    multi = np.flatnonzero(q > 0)
    banks = np.rint((1 + np.sqrt(1 + 4 * q[multi].astype(np.float64))) / 2).astype(np.int64)
    return pa.table({"group": groups["keys"][multi], "banks": banks,
                     "exposure_fen": (value[multi] // PACK) // q[multi]})


async def _products(suite: Any, share: Any) -> tuple[Any, Any]:
    """Shares of q = C(C-1) (0 exactly for groups with fewer than two lending banks) and
    W = E q, from the shared (exposure E, lending banks C) totals."""
    exposure = suite.lift(lambda a: np.ascontiguousarray(a[..., 0]), share)
    count = suite.lift(lambda a: np.ascontiguousarray(a[..., 1]), share)
    q = suite.sub(await suite.mul(count, count), count)
    return q, await suite.mul(exposure, q)


async def _multi_bank_totals(suite: Any, q: Any, w: Any, regulator: str
                             ) -> tuple[np.ndarray, np.ndarray] | None:
    """Open q and W to the regulator; returns (banks, exposure) there."""
    q_open = await suite.reveal(q, to=regulator)
    w_open = await suite.reveal(w, to=regulator)
    if q_open is None or w_open is None:
        return None
    q_int = q_open.view(np.int64)
    banks = np.where(q_int > 0, (1 + np.sqrt(1 + 4 * q_int.astype(np.float64))) / 2, 0)
    banks = np.rint(banks).astype(np.int64)
    total = np.where(q_int > 0, w_open.view(np.int64) // np.maximum(q_int, 1), 0)
    return banks, total


def _group_table(groups: Mapping[str, Any], banks: np.ndarray, total: np.ndarray
                 ) -> pa.Table:
    multi = np.flatnonzero(banks >= 2)
    return pa.table({"group": groups["keys"][multi], "members": groups["sizes"][multi],
                     "banks": banks[multi], "exposure_fen": total[multi]})
