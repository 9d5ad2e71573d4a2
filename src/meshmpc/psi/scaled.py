"""The bucketed PSI on Ray: buckets run by worker pairs, output in bucket order.

The coordinator has spilled the input into sealed bucket files as in the
single-process run (:mod:`meshmpc.psi.bucketed`); here the buckets become the
items of :func:`meshmpc.scale.run_on_ray`. Worker k runs :func:`psi_bucket`
for each bucket of its group over its pair mesh: the very per-bucket code of
the single-process run, whose aligned rows it writes as one sealed Parquet
partition per bucket. The coordinator then appends the partitions to the
output in bucket order, so the output equals the single-process run's row for
row (and byte for byte: the same writer gets the same tables in the same
order). Memory per worker is one bucket; the coordinator holds one partition
at a time. Spill and partition folders must be on storage every worker of the
party reads (one host, or a shared file system; docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from meshmpc.data.vault import Vault
from meshmpc.net import Context
from meshmpc.psi import io
from meshmpc.psi.bucketed import _bucket, learns_output
from meshmpc.psi.keys import KeyReport
from meshmpc.psi.spec import PsiJob
from meshmpc.psi.stream import Progress, Spill
from meshmpc.scale import PairWork, ScaleReport, run_on_ray
from meshmpc.scale.options import ScaleConfigError


def _vault_key(vault: Vault) -> bytes:
    """The spill vault's key, for this party's own workers (sent only within its cluster)."""
    return bytes(vault._raw)  # noqa: SLF001 - Vault has no export; workers must open the spill


async def psi_bucket(ctx: Context, bucket: int, state: dict[str, Any], *, job: PsiJob,
                     parties: list[str], spill_dir: str, buckets: int, vault_key: bytes,
                     suite: str, schema: pa.Schema, part_dir: str) -> dict[str, Any]:
    """One bucket on a worker: the single-process per-bucket PSI, then its partition."""
    start = time.perf_counter()
    vault = Vault(vault_key, suite)
    spill = Spill(Path(spill_dir), buckets, vault)
    report = KeyReport()
    outcome, aligned = await _bucket(ctx, job, parties, spill, bucket, schema.empty_table(),
                                     report, state.get("session"), Progress(ctx.party, False))
    state["session"] = outcome.session
    rows = 0
    if learns_output(job, ctx.party, parties) and aligned.num_rows:
        path = partition_path(Path(part_dir), bucket)
        await asyncio.to_thread(vault.write_table, path, aligned, path.name)
        rows = aligned.num_rows
    return {"cardinality": outcome.cardinality, "rows": rows,
            "seconds": round(time.perf_counter() - start, 4),
            "duplicates": report.duplicates,
            "duplicate_examples": [list(p) for p in report.duplicate_examples]}


def partition_path(directory: Path, bucket: int) -> Path:
    return directory / f"part-{bucket:05d}.parquet"


async def ray_buckets(ctx: Context, job: PsiJob, parties: list[str], spill: Spill,
                      empty: pa.Table, report: KeyReport, writer: io.TableWriter | None,
                      progress: Progress) -> tuple[int | None, int, dict[str, Any]]:
    """:func:`meshmpc.psi.bucketed._all_buckets` on Ray: (intersection, keys kept, scale
    report). Duplicate keys are counted per bucket, merged in bucket order."""
    assert job.ray is not None
    if len(parties) != 2:
        raise ScaleConfigError(f"party {ctx.party}: `ray:` scale-out runs two-party PSI; "
                               f"this job has {len(parties)} parties {parties}")
    peer = next(p for p in parties if p != ctx.party)
    part_dir = spill.directory / "partitions"
    part_dir.mkdir(exist_ok=True)
    args = {"job": dataclasses.replace(job, vault=None, progress=False, ray=None),
            "parties": parties, "spill_dir": str(spill.directory), "buckets": spill.buckets,
            "vault_key": _vault_key(spill.vault), "suite": spill.vault.suite,
            "schema": empty.schema, "part_dir": str(part_dir)}
    work = PairWork(psi_bucket, spill.directory / "done", args)
    scale = await run_on_ray(ctx, peer, list(range(spill.buckets)), work, job.ray, job.quiet)
    total = _merge(scale.results, report)
    clock = time.perf_counter()
    if writer is not None:
        await asyncio.to_thread(_concatenate, writer, part_dir, spill)
    concat_s = round(time.perf_counter() - clock, 3)
    progress.update("buckets", spill.buckets, spill.buckets)
    kept = report.rows - report.empty - report.duplicates
    return total, kept, {**scale.to_dict(), **_bucket_costs(scale),
                         "concatenate_s": concat_s}


def _bucket_costs(scale: ScaleReport) -> dict[str, float]:
    """Mean seconds per bucket and bytes this party's workers sent per bucket run (the
    cost model's terms; bytes from the workers' totals, as a bucket's last messages may
    still be on their way when its time is taken)."""
    if not scale.results:
        return {}
    runs = len(scale.results) + sum(len(r["items"]) for r in scale.retries)
    return {"bucket_s_mean": round(sum(r["seconds"] for r in scale.results.values())
                                   / len(scale.results), 4),
            "bucket_bytes_sent_mean": round(scale.worker_bytes_sent / runs)}


def _merge(results: dict[int, dict[str, Any]], report: KeyReport) -> int | None:
    """Intersection size and duplicate counts of every bucket, in bucket order (a worker
    already failed the job on a duplicate when ``on_duplicate`` is "error")."""
    total: int | None = None
    for b in sorted(results):
        result = results[b]
        report.merge(KeyReport(duplicates=int(result["duplicates"]), duplicate_examples=[
            (int(r), int(f)) for r, f in result["duplicate_examples"]]))
        if result["cardinality"] is not None:
            total = (total or 0) + int(result["cardinality"])
    return total


def _concatenate(writer: io.TableWriter, part_dir: Path, spill: Spill) -> None:
    """Append the partitions to the output in bucket order, one at a time."""
    for b in range(spill.buckets):
        path = partition_path(part_dir, b)
        if path.exists():
            writer.write(spill.vault.read_table(path, path.name))
