"""What the supervision components share: the roles every party derives from the job
(a regulator, two or more banks, a co-aggregating bank) and the two-server additive
sharing of each bank's per-cell or per-group vectors between the regulator (a PRG seed
from the OS) and the co-aggregator (the vector minus that seed's stream)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from meshmpc.jobs.api import StepContext
from meshmpc.jobs.errors import JobError
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.mpc.ring import ring_for

RING = ring_for(64)


def roles(step: StepContext, params: Mapping[str, Any], what: str, max_banks: int = 64,
          not_banks: tuple[str, ...] = ()) -> tuple[str, list[str], str]:
    """(regulator, banks, co-aggregator) from ``params``; errors name the setting. The
    banks are the step's parties other than the regulator and ``not_banks``."""
    regulator = str(params.get("regulator", ""))
    if regulator not in step.step_parties:
        raise JobError(step.party, step.step_id, f"params.regulator {regulator!r} is not a "
                       f"party of the step ({', '.join(step.step_parties)})")
    banks = [p for p in step.step_parties if p != regulator and p not in not_banks]
    if not 2 <= len(banks) <= max_banks:
        raise JobError(step.party, step.step_id, f"{what} takes 2 to {max_banks} banks, "
                       f"got {len(banks)}")
    co = str(params.get("co_aggregator") or banks[0])
    if co not in banks:
        raise JobError(step.party, step.step_id, f"params.co_aggregator {co!r} is not one of "
                       f"the banks ({', '.join(banks)})")
    return regulator, banks, co


async def share_out(ctx: Any, party: str, vectors: np.ndarray, plan: Mapping[str, Any]
                    ) -> np.ndarray | None:
    """Seed to the regulator, ``vectors`` minus the seed's stream to the co-aggregator
    (kept here, and returned, when this bank is the co-aggregator)."""
    seed = fresh_key()
    masked = RING.sub(RING.from_int(vectors), RING.random(Prg(seed), vectors.shape, 0))
    await ctx.send(plan["regulator"], "seed", seed)
    if party == plan["co"]:
        return masked
    await ctx.send(plan["co"], "masked", masked)
    return None


async def collect(ctx: Any, party: str, plan: Mapping[str, Any], own: np.ndarray | None,
                  shape: tuple[int, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """This compute party's additive share of the sum over banks, and of each bank's."""
    total = RING.zeros(shape)
    per_bank: dict[str, np.ndarray] = {}
    for bank in plan["banks"]:
        part = own if bank == party else await receive_share(ctx, party, plan, bank, shape)
        assert part is not None
        per_bank[bank] = part
        total = RING.add(total, part)
    return total, per_bank


async def receive_share(ctx: Any, party: str, plan: Mapping[str, Any], sender: str,
                        shape: tuple[int, ...]) -> np.ndarray:
    """This compute party's share of what ``sender`` shared out with :func:`share_out`."""
    if party == plan["regulator"]:
        return RING.random(Prg(bytes(await ctx.recv(sender, "seed"))), shape, 0)
    part = await ctx.recv(sender, "masked")
    if not isinstance(part, np.ndarray) or part.shape != shape:
        raise JobError(party, "supervision", f"{sender} sent vectors of the wrong "
                       f"shape (expected {shape})")
    return part.astype(np.uint64, copy=False)
