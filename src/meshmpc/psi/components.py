"""Job components of the PSI layer: ``psi.align``.

``psi.align`` leaves every party of the step with its rows of the entities
*every* party of the step holds, in one order common to all of them (table
``aligned``: the party's key column first, then its other columns), so that
row i describes the same entity everywhere and vertical training lines up.

It first runs the data layer's job-start validation (each party checks its
own input against its schema - ``parties.<p>.schema`` or the
``<name>.schema.toml`` beside the data - and the parties exchange one
passed/failed bit), then the chosen construction:

``pairwise`` (default; the existing approach): the hub (``params.hub``, by
default the label holder) runs a two-party PSI (``params.protocol``: ``rr22``,
the default, ``kkrt`` or ``ecdh``) with each other party; both sides of a pair
learn that pair's intersection, in an order they share. The hub intersects the results and
tells each partner which of its pair rows to keep, in the hub's file order.

Leakage of ``pairwise`` (see protocols/psi-align.md): every party learns the
common set (inherent: it ends with those rows); each partner also learns its
*pairwise* intersection with the hub, which may be larger than the common
set, and the hub learns every pairwise intersection; partners learn the
hub's relative order of the common entities. Set sizes are revealed to the
pair. A construction without the pairwise leakage (multi-party PSI with
aligned outputs) can be added as another ``construction`` value.

At rest: each party's input is read in place (never copied); the pairwise
PSIs' outputs, their bucket files and commit journal live in the step's
``.psi`` folder, sealed under the step's scratch vault
(:attr:`~meshmpc.jobs.api.StepContext.scratch_vault`), and the folder is
deleted when the step ends, whether it succeeded or failed.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from meshmpc.data.jobcheck import schema_beside, validate_if_declared
from meshmpc.data.loaders import source_kind
from meshmpc.data.schema import load_schema
from meshmpc.data.vault import Vault
from meshmpc.jobs.api import StepContext, StepOutput
from meshmpc.net import Context
from meshmpc.psi import io
from meshmpc.psi.errors import PsiError
from meshmpc.psi.job import job_from_options, run_job
from meshmpc.psi.spec import PsiJob

CONSTRUCTIONS = ("pairwise",)
PROTOCOLS = ("kkrt", "rr22", "ecdh")
ALIGN_PARAMS = ("construction", "protocol", "hub", "validate")

LEAKAGE = {
    "pairwise": ("every party learns the set of entities all parties of the step hold; each "
                 "partner also learns its pairwise intersection with the hub and the hub's "
                 "order of the common entities; the hub learns every pairwise intersection; "
                 "set sizes are revealed within each pair"),
}


def _settings(step: StepContext, params: Mapping[str, Any]) -> tuple[str, str, str, bool]:
    """(construction, protocol, hub, validate) from the public params, checked."""
    unknown = [k for k in params if k not in ALIGN_PARAMS]
    if unknown:
        raise ValueError(f"step {step.step_id!r} (psi.align): unknown param {unknown[0]!r}; "
                         f"known: {', '.join(ALIGN_PARAMS)}")
    construction = str(params.get("construction", "pairwise"))
    protocol = str(params.get("protocol", "rr22"))
    if construction not in CONSTRUCTIONS:
        raise ValueError(f"step {step.step_id!r} (psi.align): construction {construction!r} "
                         f"is not one of {', '.join(CONSTRUCTIONS)}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"step {step.step_id!r} (psi.align): protocol {protocol!r} is not "
                         f"one of {', '.join(PROTOCOLS)}")
    holder = step.label_holder
    hub = str(params.get("hub") or (holder if holder in step.step_parties
                                    else step.step_parties[0]))
    if hub not in step.step_parties:
        raise ValueError(f"step {step.step_id!r} (psi.align): hub {hub!r} is not a party of "
                         f"the step ({', '.join(step.step_parties)})")
    return construction, protocol, hub, bool(params.get("validate", True))


def _own_input(step: StepContext) -> tuple[str, str]:
    me = step.me
    for field, value in (("data", me.data), ("key", me.key)):
        if not value:
            raise ValueError(f"party {step.party}: psi.align needs parties.{step.party}."
                             f"{field} in the job file")
    assert me.data is not None and me.key is not None
    return me.data, me.key


async def align(step: StepContext, inputs: Mapping[str, StepOutput],
                params: Mapping[str, Any]) -> StepOutput:
    """The ``psi.align`` component (see the module docstring)."""
    construction, protocol, hub, check = _settings(step, params)
    data, key = _own_input(step)
    ctx = step.ctx
    schema = step.me.extra.get("schema") or schema_beside(data)
    if check:
        step.progress(0, 3, "checking the input against its schema")
        await validate_if_declared(ctx, schema, data)
    scratch = Scratch(step.workdir / ".psi", step.scratch_vault, step.party_params.get("ray"))
    scratch.directory.mkdir()
    try:
        source = _psi_input(data)
        step.progress(1, 3, f"{protocol} PSI with {'every partner' if step.party == hub else hub}")
        typed = str(schema) if schema else None  # CSV columns get the schema's types
        if step.party == hub:
            table, learnt = await _hub_side(ctx, source, key, protocol, scratch, typed)
        else:
            table, learnt = await _partner_side(ctx, hub, source, key, protocol, scratch,
                                                typed)
    finally:
        shutil.rmtree(scratch.directory, ignore_errors=True)
    step.progress(3, 3, f"{table.num_rows} common rows")
    report = {"construction": construction, "protocol": protocol, "hub": hub,
              "parties": list(step.step_parties), "aligned_rows": table.num_rows,
              **learnt, "leakage": LEAKAGE[construction]}
    return StepOutput(tables={"aligned": table}, report=report)


@dataclass(frozen=True)
class Scratch:
    """The step's PSI scratch folder and the vault its files are sealed under."""

    directory: Path
    vault: Vault
    ray: Any = None
    """This party's ``ray:`` setting (``party_params``): its pairwise PSIs run on its Ray
    cluster (docs/scale-out.md)."""


def _psi_input(data: str) -> Path | str:
    """The source as the PSI layer reads it: read in place (no copy on disk), database
    URLs kept as text."""
    source_kind(data)  # an unknown kind stops here, naming the source
    return data if "://" in data else Path(data)


def _pair_job(source: Path | str, key: str, peer: str, receiver: str, protocol: str,
              output: Path, schema: str | None, scratch: Scratch) -> PsiJob:
    """One pairwise PSI; ``schema`` types the CSV columns (without one they stay text).
    Its bucket files, caches and output are sealed under the scratch vault."""
    job = job_from_options({
        "input": str(source), "keys": [key], "peers": [peer], "receiver": receiver,
        "output": str(output), "protocol": protocol, "reveal": "all",
        "validate": False, "cache_dir": str(output.parent / "cache"), "schema": schema,
        "ray": scratch.ray})
    job.vault, job.seal_output = scratch.vault, True
    return job


async def _partner_side(ctx: Context, hub: str, source: Path | str, key: str, protocol: str,
                        scratch: Scratch, schema: str | None
                        ) -> tuple[pa.Table, dict[str, Any]]:
    pair = scratch.directory / "pair.parquet"
    await run_job(ctx.scope(ctx.party),
                  _pair_job(source, key, hub, hub, protocol, pair, schema, scratch),
                  scratch.directory / "journal")
    table = io.read_sealed_table(pair, scratch.vault)
    keep = _checked_positions(await ctx.recv(hub, "keep"), table.num_rows, hub)
    return table.take(pa.array(keep)), {"rows": _rows(source, key),
                                        "pairwise_intersection_with_hub": table.num_rows}


def _checked_positions(value: Any, limit: int, sender: str) -> np.ndarray:
    """Row positions from the hub, checked before use (it must be a bounded index list)."""
    if not isinstance(value, np.ndarray) or value.ndim != 1 or value.dtype != np.int64:
        raise PsiError(f"party {sender} sent a malformed row selection for psi.align")
    if len(value) > limit or (len(value) and (value.min() < 0 or value.max() >= limit)) \
            or len(np.unique(value)) != len(value):
        raise PsiError(f"party {sender} sent row positions outside this party's "
                       f"{limit} pairwise-intersection rows")
    return value


async def _hub_side(ctx: Context, source: Path | str, key: str, protocol: str,
                    scratch: Scratch, schema: str | None) -> tuple[pa.Table, dict[str, Any]]:
    partners = ctx.peers
    if not partners:
        options = io.ReadOptions(schema=load_schema(Path(schema)) if schema else None)
        table = io.read_table(source, [key], None, options)
        return table, {"rows": table.num_rows, "pairwise_intersection": {}}
    pairs = {p: scratch.directory / f"pair-{p}.parquet" for p in partners}
    await asyncio.gather(*(run_job(ctx.scope(p), _pair_job(source, key, p, ctx.party, protocol,
                                                           pairs[p], schema, scratch),
                                   scratch.directory / "journal") for p in partners))
    tables = {p: io.read_sealed_table(pairs[p], scratch.vault) for p in partners}
    own_keys = io.read_table(source, [key], [key]).column(key).combine_chunks()
    table, keep = common_rows(own_keys, key, tables)
    await asyncio.gather(*(ctx.send(p, "keep", keep[p]) for p in partners))
    return table, {"rows": len(own_keys),
                   "pairwise_intersection": {p: t.num_rows for p, t in tables.items()}}


def _rows(source: Path | str, key: str) -> int:
    if source_kind(source) == "parquet" and not str(source).lower().endswith(".gz"):
        return int(pq.ParquetFile(source).metadata.num_rows)
    return int(io.read_table(source, [key], [key]).num_rows)


def common_rows(own_keys: pa.Array, key: str, tables: dict[str, pa.Table]
                ) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """The hub's rows held by every partner, in the hub's file order, and each pair
    table's positions of them (vectorised: no per-row Python).

    Each pair table holds the hub's own rows of that pair's intersection (the
    hub's output of the pair PSI), so positions index the same rows on both sides.
    """
    own_keys = pc.cast(own_keys, pa.string())
    held = pa.array(np.ones(len(own_keys), dtype=bool))
    for table in tables.values():
        held = pc.and_(held, pc.is_in(own_keys, value_set=_keys(table, key)))
    order = own_keys.filter(held)
    keep = {partner: pc.index_in(order, value_set=_keys(table, key))
            .to_numpy(zero_copy_only=False).astype(np.int64)
            for partner, table in tables.items()}
    first = next(iter(tables))
    return tables[first].take(pa.array(keep[first])), keep


def _keys(table: pa.Table, key: str) -> pa.Array:
    return pc.cast(table.column(key).combine_chunks(), pa.string())
