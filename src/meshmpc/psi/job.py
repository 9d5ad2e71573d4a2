"""File in, file out: one party's side of a PSI job.

:func:`run_job` checks everything that can fail locally first - the input
is readable and decodable, its keys usable, the output location writable -
before it sends the first message, so that one party never stops with a
local mistake after its peers have invested in the protocol. It then agrees
on the parameters with its peers, runs the chosen protocol and ends with a
two-phase commit of the outputs (:mod:`meshmpc.psi.commit`): either every
party's output appears, or none does (or, after a lost link, it is kept "in
doubt" until ``meshmpc psi reconcile``).
"""

from __future__ import annotations

import asyncio
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from meshmpc.data.jobcheck import schema_beside, validate_if_declared
from meshmpc.data.schema import load_schema
from meshmpc.net import Context
from meshmpc.psi import io
from meshmpc.psi.align import MATCHED_COLUMN, aligned_table, output_columns
from meshmpc.psi.bucketed import run_bucketed
from meshmpc.psi.commit import Commit, agree_job_id, state_dir
from meshmpc.psi.common import PsiOutcome, agree, exchange_sizes
from meshmpc.psi.errors import PsiInputError
from meshmpc.psi.keys import KeyOptions, PreparedKeys, prepare_keys
from meshmpc.psi.options import check_options
from meshmpc.psi.protocols import PROTOCOLS, prepare_session, run_protocol
from meshmpc.psi.spec import (
    DEFAULT_BUCKET_ROWS,
    PsiJob,
    PsiSummary,
    phase_timer,
    receiver_of,
)
from meshmpc.psi.stream import Progress, bucket_count
from meshmpc.scale.options import connect_ray, parse_ray_options, require_ray

WRITE_ROWS = 1 << 16
"""Output rows written per batch (the progress display ticks between batches)."""


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


@dataclass
class LocalInput:
    """What the local checks produced: the source, and the whole input when it is small."""

    source: io.BatchSource
    estimate: int
    table: pa.Table | None = None
    prep: PreparedKeys | None = None


def _read_options(job: PsiJob) -> io.ReadOptions:
    schema_path = job.schema or (schema_beside(job.input)
                                 if job.validate and isinstance(job.input, Path) else None)
    schema = load_schema(schema_path) if schema_path is not None else None
    return io.ReadOptions(job.encoding, job.delimiter, schema)


def check_locally(job: PsiJob, columns: list[str] | None,
                  progress: Progress | None = None) -> LocalInput:
    """Everything that can fail on this node, before any message is sent.

    Inputs small enough to run in memory are read and their keys prepared here
    (so an undecodable value or a bad key fails now); larger ones are checked
    while they are bucketed. ``progress`` shows the reading with its rate.
    """
    progress = progress or Progress.off()
    source = io.BatchSource(job.input, job.keys.columns, columns, options=_read_options(job))
    if job.output is not None:
        out = output_columns(source.schema.names, job.keys.columns, job.payload)
        schema = pa.schema([source.schema.field(c) for c in out])
        if job.row_number_column:
            schema = schema.append(pa.field(job.row_number_column, pa.int64()))
        if job.mode == "left":
            schema = schema.append(pa.field(MATCHED_COLUMN, pa.bool_()))
        io.check_writable(job.output, schema)
    estimate = source.estimate_rows()
    local = LocalInput(source, estimate)
    if estimate <= job.bucket_rows:
        with progress.phase(f"reading {job.input}", estimate or None, "rows") as reading:
            table = io.read_table(job.input, job.keys.columns, columns, source.options,
                                  reading.advance)
        local.table = _with_row_numbers(table, job)
        with progress.phase("normalising and hashing the keys", table.num_rows, "keys"):
            local.prep = prepare_keys(local.table, job.keys, str(job.input))
        warn_dropped(job, local.prep)
    return local


def _with_row_numbers(table: pa.Table, job: PsiJob) -> pa.Table:
    name = job.row_number_column
    if not name:
        return table
    if name in table.column_names:
        raise PsiInputError(job.input, f"--row-number-column {name!r} is already a column of "
                                       f"the input; choose another name")
    return table.append_column(name, pa.array(np.arange(1, table.num_rows + 1), pa.int64()))


def warn_dropped(job: PsiJob, prep: PreparedKeys) -> None:
    """Tell the user on stderr which rows take no part (empty or repeated keys)."""
    report = prep.report
    if job.quiet or not (report.empty or report.duplicates):
        return
    parts = []
    if report.empty:
        parts.append(f"{report.empty} rows with an empty key dropped "
                     f"(first rows {report.empty_examples})")
    if report.duplicates:
        first = ", ".join(f"row {r} repeats row {f}" for r, f in report.duplicate_examples)
        parts.append(f"{report.duplicates} rows with a repeated key dropped, the first row of "
                     f"each key kept ({first})")
    sys.stderr.write(f"psi: warning: {job.input}: " + "; ".join(parts)
                     + " (row numbers count data rows from 1)\n")


async def run_job(ctx: Context, job: PsiJob, state: Path | None = None) -> PsiSummary:
    """Run one party's side of ``job`` over ``ctx`` and write its output file.

    Inputs up to ``job.bucket_rows`` rows (the larger party's count decides) run
    in memory; larger ones are bucketed by key hash (:mod:`meshmpc.psi.stream`).
    ``state`` is the commit journal's folder (default: :func:`state_dir`).
    """
    phases: dict[str, float] = {}
    parties = _participants(ctx, job)
    peers = [p for p in parties if p != ctx.party]
    columns = None if job.payload is None else [*job.keys.columns, *job.payload]
    progress = Progress(ctx.party, job.progress)
    progress.stage(f"reading and checking {job.input}")
    with phase_timer(phases, "check"):
        local = await asyncio.to_thread(check_locally, job, columns, progress)
    if local.table is not None:
        progress.stage(_rate(f"read and hashed {local.table.num_rows:,} rows",
                             local.table.num_rows, phases["check"]))
    if job.ray is not None:
        # a missing Ray, or a cluster it cannot join, fails here before any message is sent
        connect_ray(require_ray(ctx.party), job.ray)
    progress.stage(f"agreeing on the parameters with {', '.join(peers)}")
    with phase_timer(phases, "agree"):
        estimates = await agree(ctx, peers, job.agreement(parties), local.estimate)
        commit = Commit(ctx, parties, await agree_job_id(ctx, parties), state_dir(state))
    if job.validate:
        progress.stage("checking every party's input against its schema")
        with phase_timer(phases, "validate"):
            schema = job.schema or (schema_beside(job.input)
                                    if isinstance(job.input, Path) else None)
            await validate_if_declared(ctx.subgroup(parties), schema, job.input)
    buckets = bucket_count(max(estimates.values()), job.bucket_rows)
    if buckets > 1 or local.table is None or local.prep is None:
        return await run_bucketed(ctx, job, parties, local.source, max(buckets, 2), phases,
                                  commit)
    return await _run_in_memory(ctx, job, parties, local, commit, phases, progress)


async def _run_in_memory(ctx: Context, job: PsiJob, parties: list[str], local: LocalInput,
                         commit: Commit, phases: dict[str, float],
                         progress: Progress) -> PsiSummary:
    table, prep = local.table, local.prep
    assert table is not None and prep is not None
    peers = [p for p in parties if p != ctx.party]
    receiver = receiver_of(job, parties)
    progress.stage(f"setting up {job.protocol}")
    with phase_timer(phases, "setup"):
        session = (await prepare_session(ctx, job.protocol, parties, receiver)
                   if job.reveal != "cardinality" else None)
    progress.stage(f"running {job.protocol} on {len(prep.digests)} keys")
    with phase_timer(phases, "protocol"):
        sizes = await exchange_sizes(ctx, peers, len(prep.digests), "all")
        outcome = await run_protocol(ctx, job.protocol, parties, receiver, prep.digests, sizes,
                                     job.reveal, job.workers, _cache_dir(job), session,
                                     progress, job.vault)
    phases.update({f"protocol.{k}": v for k, v in outcome.steps.items()})
    progress.stage(_rate(f"{job.protocol} finished on {sum(sizes.values()):,} keys in all",
                         sum(sizes.values()), phases["protocol"]))
    with phase_timer(phases, "write"):
        writer, out_rows = await asyncio.to_thread(_write_pending, table, prep, outcome, job,
                                                   progress)
        progress.stage(f"wrote {out_rows:,} rows; confirming with the peers")
        out = await commit.run(writer)
    out_path = str(out) if out is not None else None
    progress.stage(f"done: intersection {outcome.cardinality}, output {out_path}")
    traffic = ctx.traffic()
    return PsiSummary(ctx.party, table.num_rows, len(prep.digests), prep.report,
                      outcome.cardinality, out_path, out_rows, phases,
                      traffic.bytes_sent, traffic.bytes_received)


def _rate(text: str, count: int, seconds: float) -> str:
    """``text in 1.2 s (830,000 per s)``: a finished step with its throughput."""
    per_s = f", {count / seconds:,.0f} per s" if seconds > 0 and count else ""
    return f"{text} in {seconds:.2f} s{per_s}"


def _source(text: str) -> Path | str:
    """A path, or a URL kept as text (``Path`` would fold ``sqlite:///`` into ``sqlite:/``)."""
    return text if "://" in str(text) else Path(text)


def _cache_dir(job: PsiJob) -> Path:
    if job.cache_dir is not None:
        return job.cache_dir
    base = Path(job.input).parent if isinstance(job.input, Path) else Path.cwd()
    return base / ".meshmpc-psi-cache"


def _write_pending(table: pa.Table, prep: PreparedKeys, outcome: PsiOutcome,
                   job: PsiJob, progress: Progress) -> tuple[io.TableWriter | None, int]:
    """Write the output under its temporary name (committed later, see :class:`Commit`)."""
    if job.output is None or outcome.matched is None:
        return None, 0
    cols = output_columns(table.schema.names, job.keys.columns, job.payload)
    if job.row_number_column and job.row_number_column not in cols:
        cols.append(job.row_number_column)
    aligned = aligned_table(table, prep.rows, outcome.matched, job.mode, cols)
    writer = io.TableWriter(job.output, aligned.schema, job.vault if job.seal_output else None)
    try:
        with progress.phase(f"writing {job.output}", aligned.num_rows, "rows") as writing:
            for start in range(0, aligned.num_rows, WRITE_ROWS):
                part = aligned.slice(start, WRITE_ROWS)
                writer.write(part)
                writing.advance(part.num_rows)
    except BaseException:
        writer.abort()
        raise
    return writer, aligned.num_rows


def job_from_options(options: dict[str, Any]) -> PsiJob:
    """Build a :class:`PsiJob` from plain values (CLI arguments, msgpack job args).

    Unknown or missing fields raise a :class:`UserError` naming them.
    """
    check_options(options)
    keys = KeyOptions(
        columns=tuple(options["keys"]), trim=bool(options.get("trim", True)),
        casefold=bool(options.get("casefold", False)),
        halfwidth=bool(options.get("halfwidth", True)),
        on_empty=options.get("on_empty", "drop"),
        on_duplicate=options.get("on_duplicate", "first"),
    )
    output = options.get("output")
    return PsiJob(
        input=_source(options["input"]), keys=keys, peers=list(options["peers"]),
        receiver=options.get("receiver"), output=Path(output) if output else None,
        payload=options.get("payload"), protocol=options.get("protocol", "ecdh"),
        reveal=options.get("reveal", "all"), mode=options.get("mode", "inner"),
        workers=options.get("workers"),
        cache_dir=Path(options["cache_dir"]) if options.get("cache_dir") else None,
        bucket_rows=int(options.get("bucket_rows") or DEFAULT_BUCKET_ROWS),
        progress=bool(options.get("progress", False)),
        schema=Path(options["schema"]) if options.get("schema") else None,
        validate=bool(options.get("validate", True)),
        encoding=options.get("encoding"), delimiter=options.get("delimiter"),
        row_number_column=options.get("row_number_column"),
        quiet=bool(options.get("quiet", False)),
        ray=parse_ray_options(options.get("ray")),
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
        **({"scale": summary.scale} if summary.scale is not None else {}),
    }


def _cpu_seconds() -> float:
    """CPU time of this party's process and its finished workers (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


async def run_job_options(ctx: Context, **options: Any) -> dict[str, Any]:
    """Entry point for launchers: run the job described by ``options``, return its summary."""
    state = options.pop("state_dir", None)
    job = job_from_options(options)
    return summary_dict(await run_job(ctx, job, Path(state) if state else None))


async def run_party_jobs(ctx: Context, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Launcher entry when every party gets the same arguments: pick this party's job."""
    return await run_job_options(ctx, **jobs[ctx.party])


def _check_party_jobs(kwargs: dict[str, Any]) -> None:
    jobs = kwargs.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        raise PsiInputError("--args", "give {\"jobs\": {PARTY: {options...}, ...}}")
    for party, options in jobs.items():
        check_options(options, f"--args jobs.{party}")


ARGUMENT_CHECKS = {"run_job_options": check_options, "run_party_jobs": _check_party_jobs}
"""Checked by ``meshmpc launch`` before any process starts."""
