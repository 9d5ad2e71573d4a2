"""The bucketed path of a PSI job: bounded memory for inputs of any size.

See :mod:`meshmpc.psi.stream` for the bucketing itself. Each bucket runs the
job's protocol under its own tag scope; the output file is written bucket by
bucket to a temporary file and renamed into place only after the last one.
The bucket files live in a locked scratch folder (:mod:`meshmpc.data.scratchdir`)
deleted when the job ends, however it ends; a crash leaves only ciphertext,
which ``meshmpc data purge`` removes.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from meshmpc import _core
from meshmpc.data.scratchdir import scratch_dir
from meshmpc.net import Context
from meshmpc.psi import io, stream
from meshmpc.psi.align import MATCHED_COLUMN, aligned_table, output_columns
from meshmpc.psi.common import PsiOutcome, exchange_sizes
from meshmpc.psi.errors import PsiInputError
from meshmpc.psi.keys import EXAMPLES, KeyReport
from meshmpc.psi.protocols import run_protocol
from meshmpc.psi.spec import PsiJob, PsiSummary, phase_timer, receiver_of
from meshmpc.psi.stream import (
    MemorySpill,
    Progress,
    Spill,
    bucket_keys,
    spill_input,
)


def learns_output(job: PsiJob, party: str, parties: list[str]) -> bool:
    """Whether this party gets rows: it learns the intersection and has an output path."""
    if job.output is None or job.reveal == "cardinality":
        return False
    return job.reveal == "all" or party == receiver_of(job, parties)


def _dedup(digests: npt.NDArray[np.uint8], rows: npt.NDArray[np.int64], job: PsiJob,
           report: KeyReport) -> npt.NDArray[np.int64]:
    """Local indices of first occurrences; repeats counted with global row numbers."""
    first = _core.psi_first_index(digests) if len(digests) else np.empty(0, np.int64)
    local = np.arange(len(first))
    repeated = np.flatnonzero(first != local)
    examples = [(int(rows[i]) + 1, int(rows[first[i]]) + 1) for i in repeated[:EXAMPLES]]
    report.merge(KeyReport(duplicates=len(repeated), duplicate_examples=examples))
    if len(repeated) and job.keys.on_duplicate == "error":
        ex = ", ".join(f"row {r} repeats row {f}" for r, f in examples)
        raise PsiInputError(job.input, f"duplicate keys ({ex})", ",".join(job.keys.columns))
    return local[first == local]


async def _bucket(ctx: Context, job: PsiJob, parties: list[str], spill: Spill, b: int,
                  empty: pa.Table, report: KeyReport, session: Any,
                  progress: Progress) -> tuple[PsiOutcome, pa.Table]:
    table = await asyncio.to_thread(spill.load, b)
    if table is None:
        data, digests, rows = empty, np.empty((0, 16), np.uint8), np.empty(0, np.int64)
    else:
        data, digests, rows = bucket_keys(table)
        if job.row_number_column:
            data = data.append_column(job.row_number_column, pa.array(rows + 1, pa.int64()))
    kept = _dedup(digests, rows, job, report)
    scoped = ctx.scope(f"bucket{b}")
    peers = [p for p in parties if p != ctx.party]
    sizes = await exchange_sizes(scoped, peers, len(kept), "bucket")
    outcome = await run_protocol(scoped, job.protocol, parties, receiver_of(job, parties),
                                 np.ascontiguousarray(digests[kept]), sizes, job.reveal,
                                 job.workers, job.cache_dir, session, progress, job.vault)
    if outcome.matched is None:
        return outcome, empty
    return outcome, aligned_table(data, kept, outcome.matched, job.mode, data.schema.names)


def _output_schema(schema: pa.Schema, job: PsiJob) -> pa.Schema:
    if job.mode == "left":
        return schema.append(pa.field(MATCHED_COLUMN, pa.bool_()))
    return schema


async def run_bucketed(ctx: Context, job: PsiJob, parties: list[str], source: io.BatchSource,
                       buckets: int, phases: dict[str, float],
                       commit: Any = None) -> PsiSummary:
    """Spill the input into ``buckets`` buckets, then run PSI bucket by bucket.

    ``commit`` (a :class:`meshmpc.psi.commit.Commit`) publishes the output only
    once every party has written its own; without one the file is renamed at once.
    """
    progress = Progress(ctx.party, job.progress)
    scale = None
    cols = output_columns(source.schema.names, job.keys.columns, job.payload)
    empty = source.schema.empty_table().select(cols)
    if job.row_number_column:
        empty = empty.append_column(job.row_number_column, pa.array([], pa.int64()))
    spill_root = job.output.parent if job.output else (
        Path(job.input).parent if isinstance(job.input, Path) else Path.cwd())
    with scratch_dir(spill_root, ".psi-spill-") as tmp:
        # read at run time; Ray workers are other processes: they read the sealed bucket files
        in_memory = job.ray is None and source.estimate_rows() <= stream.MEMORY_SPILL_ROWS
        spill = MemorySpill(buckets) if in_memory else Spill(tmp, buckets, job.vault)
        with phase_timer(phases, "read_bucket"):
            report = await asyncio.to_thread(spill_input, source, job.keys, cols, spill, progress)
        writer = (io.TableWriter(job.output, _output_schema(empty.schema, job),
                                 job.vault if job.seal_output else None)
                  if job.output is not None and learns_output(job, ctx.party, parties) else None)
        try:
            with phase_timer(phases, "protocol"):
                if job.ray is not None:  # scale-out: buckets on this party's Ray cluster
                    from meshmpc.psi.scaled import ray_buckets

                    total, kept, scale = await ray_buckets(ctx, job, parties, spill, empty,
                                                           report, writer, progress)
                else:
                    steps: dict[str, float] = {}
                    total, kept = await _all_buckets(ctx, job, parties, spill, empty, report,
                                                     writer, progress, steps)
                    phases.update({f"protocol.{k}": round(v, 4) for k, v in steps.items()})
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    progress.done()
    if commit is not None:
        path = await commit.run(writer)
    else:
        path = writer.commit() if writer is not None else None
    out = str(path) if path is not None else None
    traffic, workers = ctx.traffic(), scale or {}  # a Ray run's workers sent the bulk
    return PsiSummary(ctx.party, report.rows, kept, report, total, out,
                      writer.rows if writer else 0, phases,
                      traffic.bytes_sent + workers.get("worker_bytes_sent", 0),
                      traffic.bytes_received + workers.get("worker_bytes_received", 0), scale)


class _Prefetch:
    """A :class:`Spill` whose :meth:`load` of bucket b starts loading bucket b + 1 in a
    thread, so that reading and opening the next sealed bucket file overlaps bucket b's
    protocol (at most two buckets are in memory)."""

    def __init__(self, spill: Spill) -> None:
        self.spill = spill
        self.buckets = spill.buckets
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="psi-bucket-load")
        self._ahead: dict[int, Future[pa.Table | None]] = {}

    def load(self, b: int) -> pa.Table | None:
        future = self._ahead.pop(b, None) or self._pool.submit(self.spill.load, b)
        if b + 1 < self.buckets and b + 1 not in self._ahead:
            self._ahead[b + 1] = self._pool.submit(self.spill.load, b + 1)
        return future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


async def _all_buckets(ctx: Context, job: PsiJob, parties: list[str], spill: Spill,
                       empty: pa.Table, report: KeyReport, writer: io.TableWriter | None,
                       progress: Progress, steps: dict[str, float] | None = None
                       ) -> tuple[int | None, int]:
    """Every bucket in order; the next bucket loads, and the last one's rows are written,
    while a bucket's protocol runs (the output keeps bucket order). ``steps`` sums each
    protocol step's wall and CPU time over the buckets (the job's ``protocol.*`` phases)."""
    total: int | None = None
    kept = report.rows - report.empty
    session = None
    ahead = _Prefetch(spill)
    writing: asyncio.Future[None] | None = None
    try:
        for b in range(spill.buckets):
            outcome, aligned = await _bucket(ctx, job, parties, cast(Spill, ahead), b, empty,
                                             report, session, progress)
            session = outcome.session
            for name, seconds in outcome.steps.items():
                if steps is not None:
                    steps[name] = steps.get(name, 0.0) + seconds
            if outcome.cardinality is not None:
                total = (total or 0) + outcome.cardinality
            if writer is not None and aligned.num_rows:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(asyncio.to_thread(writer.write, aligned))
            progress.update("buckets", b + 1, spill.buckets)
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            await asyncio.wait([writing])  # never abort the file under a running write
        await asyncio.to_thread(ahead.close)
    return total, kept - report.duplicates
