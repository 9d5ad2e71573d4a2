"""File in, file out: one party's side of a PSI job.

:func:`run_job` reads the party's input (CSV or Parquet), prepares the keys,
agrees on the parameters with its peers, runs the chosen protocol and writes
the aligned rows atomically. The output file appears only after the protocol
has finished: a failed or interrupted run leaves no output behind.
"""

from __future__ import annotations

import asyncio
import resource
from pathlib import Path
from typing import Any

from meshmpc.data.jobcheck import schema_beside, validate_if_declared
from meshmpc.net import Context
from meshmpc.psi import io
from meshmpc.psi.align import aligned_table, output_columns
from meshmpc.psi.bucketed import run_bucketed
from meshmpc.psi.common import PsiOutcome, agree, exchange_sizes
from meshmpc.psi.errors import PsiInputError
from meshmpc.psi.keys import KeyOptions, PreparedKeys, prepare_keys
from meshmpc.psi.protocols import PROTOCOLS, prepare_session, run_protocol
from meshmpc.psi.spec import (
    DEFAULT_BUCKET_ROWS,
    PsiJob,
    PsiSummary,
    phase_timer,
    receiver_of,
)
from meshmpc.psi.stream import Progress, bucket_count


def _participants(ctx: Context, job: PsiJob) -> list[str]:
    names = {ctx.party, *job.peers}
    unknown = sorted(names - set(ctx.parties))
    if unknown:
        raise PsiInputError(job.input, f"party {unknown[0]!r} is not in the cluster {ctx.parties}")
    if job.receiver is not None and job.receiver not in names:
        raise PsiInputError(job.input, f"receiver {job.receiver!r} is not one of {sorted(names)}")
    if job.protocol not in PROTOCOLS:
        raise PsiInputError(job.input,
                            f"unknown protocol {job.protocol!r}; have {sorted(PROTOCOLS)}")
    return [p for p in ctx.parties if p in names]


async def run_job(ctx: Context, job: PsiJob) -> PsiSummary:
    """Run one party's side of ``job`` over ``ctx`` and write its output file.

    Inputs up to ``job.bucket_rows`` rows (the larger party's count decides) run
    in memory; larger ones are bucketed by key hash (:mod:`meshmpc.psi.stream`).
    """
    phases: dict[str, float] = {}
    parties = _participants(ctx, job)
    peers = [p for p in parties if p != ctx.party]
    columns = None if job.payload is None else [*job.keys.columns, *job.payload]
    source = io.BatchSource(job.input, job.keys.columns, columns)
    with phase_timer(phases, "agree"):
        estimate = await asyncio.to_thread(source.estimate_rows)
        estimates = await agree(ctx, peers, job.agreement(parties), estimate)
    if job.validate:
        with phase_timer(phases, "validate"):
            schema = job.schema or schema_beside(job.input)
            await validate_if_declared(ctx.subgroup(parties), schema, job.input)
    buckets = bucket_count(max(estimates.values()), job.bucket_rows)
    if buckets > 1:
        return await run_bucketed(ctx, job, parties, source, buckets, phases)
    receiver = receiver_of(job, parties)
    setup = (asyncio.ensure_future(prepare_session(ctx, job.protocol, parties, receiver))
             if job.reveal != "cardinality" else None)
    table, prep, session = await _read_and_prepare(job, columns, setup, phases)
    progress = Progress(ctx.party, job.progress)
    progress.stage(f"running {job.protocol} on {len(prep.digests)} keys")
    with phase_timer(phases, "protocol"):
        sizes = await exchange_sizes(ctx, peers, len(prep.digests), "all")
        outcome = await run_protocol(ctx, job.protocol, parties, receiver, prep.digests, sizes,
                                     job.reveal, job.workers, _cache_dir(job), session)
    phases.update({f"protocol.{k}": v for k, v in outcome.steps.items()})
    with phase_timer(phases, "write"):
        out_path, out_rows = _write_output(table, prep, outcome, job)
    progress.stage(f"done: intersection {outcome.cardinality}, output {out_path}")
    traffic = ctx.traffic()
    return PsiSummary(ctx.party, table.num_rows, len(prep.digests), prep.report,
                      outcome.cardinality, out_path, out_rows, phases,
                      traffic.bytes_sent, traffic.bytes_received)


async def _read_and_prepare(job: PsiJob, columns: list[str] | None,
                            setup: asyncio.Future[Any] | None,
                            phases: dict[str, float]) -> tuple[Any, PreparedKeys, Any]:
    """Read and digest the input while the input-free protocol set-up runs."""
    try:
        with phase_timer(phases, "read"):
            table = await asyncio.to_thread(io.read_table, job.input, job.keys.columns, columns)
        with phase_timer(phases, "keys"):
            prep = await asyncio.to_thread(prepare_keys, table, job.keys, str(job.input))
        with phase_timer(phases, "setup_wait"):
            session = await setup if setup is not None else None
    except BaseException:
        if setup is not None:
            setup.cancel()
        raise
    return table, prep, session


def _cache_dir(job: PsiJob) -> Path:
    return job.cache_dir or job.input.parent / ".meshmpc-psi-cache"


def _write_output(table: Any, prep: PreparedKeys, outcome: PsiOutcome,
                  job: PsiJob) -> tuple[str | None, int]:
    if job.output is None or outcome.matched is None:
        return None, 0
    cols = output_columns(table.schema.names, job.keys.columns, job.payload)
    aligned = aligned_table(table, prep.rows, outcome.matched, job.mode, cols)
    return str(io.write_table(aligned, job.output)), aligned.num_rows


def job_from_options(options: dict[str, Any]) -> PsiJob:
    """Build a :class:`PsiJob` from plain values (CLI arguments, msgpack job args)."""
    keys = KeyOptions(
        columns=tuple(options["keys"]), trim=bool(options.get("trim", True)),
        casefold=bool(options.get("casefold", False)),
        on_empty=options.get("on_empty", "drop"),
        on_duplicate=options.get("on_duplicate", "first"),
    )
    output = options.get("output")
    return PsiJob(
        input=Path(options["input"]), keys=keys, peers=list(options["peers"]),
        receiver=options.get("receiver"), output=Path(output) if output else None,
        payload=options.get("payload"), protocol=options.get("protocol", "ecdh"),
        reveal=options.get("reveal", "all"), mode=options.get("mode", "inner"),
        workers=options.get("workers"),
        cache_dir=Path(options["cache_dir"]) if options.get("cache_dir") else None,
        bucket_rows=int(options.get("bucket_rows") or DEFAULT_BUCKET_ROWS),
        progress=bool(options.get("progress", False)),
        schema=Path(options["schema"]) if options.get("schema") else None,
        validate=bool(options.get("validate", True)),
    )


def summary_dict(summary: PsiSummary) -> dict[str, Any]:
    """A msgpack/JSON-friendly view of a :class:`PsiSummary`."""
    report = summary.report
    return {
        "party": summary.party, "rows": summary.rows, "keys_used": summary.keys_used,
        "empty_keys": report.empty, "empty_examples": report.empty_examples,
        "duplicate_keys": report.duplicates,
        "duplicate_examples": [list(p) for p in report.duplicate_examples],
        "intersection": summary.intersection, "output": summary.output,
        "output_rows": summary.output_rows, "phases": summary.phases,
        "bytes_sent": summary.bytes_sent, "bytes_received": summary.bytes_received,
        "cpu_s": round(_cpu_seconds(), 3),
    }


def _cpu_seconds() -> float:
    """CPU time of this party's process and its finished workers (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


async def run_job_options(ctx: Context, **options: Any) -> dict[str, Any]:
    """Entry point for launchers: run the job described by ``options``, return its summary."""
    return summary_dict(await run_job(ctx, job_from_options(options)))


async def run_party_jobs(ctx: Context, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Launcher entry when every party gets the same arguments: pick this party's job."""
    return await run_job_options(ctx, **jobs[ctx.party])
