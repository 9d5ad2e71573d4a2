"""Run a job on one party: the DAG in order, artefacts, manifest, failure and resume.

Every party runs :func:`run_party_job` with the same job file. The parties
first agree that they run the same job (SHA-256 of its public part: no
paths, no ``party_params``) and, with ``resume``, which completed steps to
skip. Steps then run one after another in the job's topological order; each
step's component runs on the step's parties over ``ctx.subgroup(parties)
.scope("step/<id>")`` and receives the outputs of all its ancestors.

After a step every party of the job sends each peer a one-line status on
the job's scope (``ok``, or the failing party and the error's *type*: the
message may name private files or rows and stays with its owner). A party
waits for its peers' statuses while its component runs, so a failure (or a
peer that disconnects) stops every party promptly, each naming the failed
party and the step, instead of leaving them waiting forever. A step's
artefacts are renamed into place only when every party finished it, so no
half-written step is left anywhere.

Messages: two per pair of parties per step plus one at the start; each is a
small dict (bounded size, checked before use).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import shutil
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meshmpc.data import scratchdir
from meshmpc.data.vault import Vault
from meshmpc.jobs import artefacts
from meshmpc.jobs.api import StepContext, StepOutput
from meshmpc.jobs.datasets import DatasetHandOver
from meshmpc.jobs.errors import JobError, JobMismatchError, PeerStepError, StepFailedError
from meshmpc.jobs.progress import ProgressSink
from meshmpc.jobs.registry import ComponentRegistry, Resolved
from meshmpc.jobs.spec import JobSpec, StepSpec, canonical_json
from meshmpc.net import Context
from meshmpc.net.errors import NetworkError

PEER_STATUS_GRACE_S = 1.0
"""How long a party whose component lost a peer waits for that peer's failure status."""


class _Run:
    """One party's state while it runs a job."""

    def __init__(self, ctx: Context, spec: JobSpec, out_dir: str | Path,
                 registry: ComponentRegistry, progress: ProgressSink,
                 options: Mapping[str, Any], vault: Vault | None = None) -> None:
        self.spec = spec
        self.me = ctx.party
        missing = [p for p in spec.parties if p not in ctx.parties]
        if self.me not in spec.parties or missing:
            raise JobError(self.me, None, f"party {self.me}: the mesh has parties "
                           f"{ctx.parties} but job {spec.name!r} needs {list(spec.parties)}")
        self.ctx = ctx.subgroup(list(spec.parties))
        self.job_ctx = self.ctx.scope(f"job/{spec.name}")
        self.root = artefacts.party_dir(out_dir, spec.name, self.me)
        self.registry = registry
        self.progress = progress
        self.options = dict(options)
        self.vault = vault
        self.scratch_vault = vault or Vault.ephemeral()
        self.outputs: dict[str, StepOutput] = {}
        self.manifest: dict[str, Any] = {}

    def participant(self, step: StepSpec) -> bool:
        return self.me in step.parties


async def run_party_job(ctx: Context, spec: JobSpec, out_dir: str | Path, *,
                        registry: ComponentRegistry | None = None, resume: bool = False,
                        progress: ProgressSink | None = None,
                        options: Mapping[str, Any] | None = None,
                        vault: Vault | None = None) -> dict[str, Any]:
    """Run this party's side of ``spec``; return a summary (per-step status, reports).

    With ``vault`` every artefact is sealed under this party's key
    (:mod:`meshmpc.jobs.artefacts`); without, they are written in clear. Scratch
    files of the steps are sealed either way (:attr:`StepContext.scratch_vault`) and
    deleted when their step ends; the party folder's owner lock, held for the run,
    lets ``meshmpc data purge`` remove what a crashed run left.

    Raises :class:`StepFailedError` at the party whose step failed and
    :class:`PeerStepError` at every other party, both naming party and step.
    """
    run = _Run(ctx, spec, out_dir, registry or ComponentRegistry(), progress or ProgressSink(),
               options or {}, vault)
    try:
        with scratchdir.held(run.root):
            return await _run_steps(run, resume)
    except scratchdir.ScratchBusy:
        raise JobError(run.me, None, f"party {run.me}: job {spec.name!r} is already running "
                       f"into {run.root}; wait for it or give another --out") from None


async def _run_steps(run: _Run, resume: bool) -> dict[str, Any]:
    """The run under the party folder's owner lock (a crash frees it: purge can tell)."""
    spec = run.spec
    artefacts.remove_stale_workdirs(run.root)
    previous = artefacts.read_manifest(run.root) if resume else {}
    skip = await _agree_on_start(run, previous)
    run.manifest = _new_manifest(run, previous, skip)
    summary: dict[str, Any] = {"party": run.me, "job": spec.name, "out": str(run.root),
                               "steps": {}}
    try:
        for index, step in enumerate(spec.steps, start=1):
            run.progress.start_step(step.id, index, len(spec.steps))
            status = "failed"
            try:
                entry = await (_resume_step(run, step) if step.id in skip
                               else _execute_step(run, step))
                status = entry["status"]
            finally:
                run.progress.end_step(step.id, status)
            summary["steps"][step.id] = _summary_of(run, step, entry)
    finally:
        run.progress.close()
    traffic = run.ctx.traffic()
    summary.update(bytes_sent=traffic.bytes_sent, bytes_received=traffic.bytes_received)
    return summary


def _summary_of(run: _Run, step: StepSpec, entry: dict[str, Any]) -> dict[str, Any]:
    out = {k: entry.get(k) for k in ("status", "wall_s", "bytes_sent")}
    output = run.outputs.get(step.id)
    out["report"] = output.report if output is not None else {}
    return out


def _new_manifest(run: _Run, previous: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    steps = previous.get("steps", {})
    kept = {s: dict(steps.get(s) or {"status": "not-a-party"}) for s in skip}
    sealed = run.vault.key_id.hex() if run.vault is not None else None
    return {"version": artefacts.MANIFEST_VERSION, "job": run.spec.name, "party": run.me,
            "vault_key_id": sealed, "purpose": run.spec.raw.get("purpose"),
            "job_digest": run.spec.public_digest(), "order": [s.id for s in run.spec.steps],
            "started_at": _now(), "steps": kept}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def _agree_on_start(run: _Run, previous: dict[str, Any]) -> set[str]:
    """Check every party runs this job; with a previous manifest, agree what to skip."""
    digest = run.spec.public_digest()
    mine = _locally_skippable(run, previous)
    await run.job_ctx.broadcast("start", {"digest": digest, "skippable": sorted(mine)})
    theirs = await run.job_ctx.recv_all("start")
    votes = {run.me: mine}
    for peer, msg in theirs.items():
        if not isinstance(msg, dict) or msg.get("digest") != digest:
            raise JobMismatchError(run.me, None, f"party {run.me}: party {peer} runs a "
                                   f"different job file than {run.spec.source} (its steps, "
                                   "params or parties differ); give every party the same file")
        listed = msg.get("skippable")
        votes[peer] = {s for s in listed if isinstance(s, str)} if isinstance(listed, list) \
            else set()
    skip: set[str] = set()
    for step in run.spec.steps:
        agreed = all(step.id in votes[p] for p in step.parties)
        if agreed and all(a in skip for a in step.after):
            skip.add(step.id)
    return skip


def _locally_skippable(run: _Run, previous: dict[str, Any]) -> set[str]:
    """Steps this party completed before with intact artefacts and unchanged inputs."""
    steps = previous.get("steps")
    if not isinstance(steps, dict):
        return set()
    ok: set[str] = set()
    for step in run.spec.steps:
        entry = steps.get(step.id)
        if not run.participant(step) or not isinstance(entry, dict):
            continue
        if entry.get("status") not in ("ran", "resumed"):
            continue
        if entry.get("input_digest") != _input_digest(run, step, steps):
            continue
        if entry.get("sealed") != (run.vault.key_id.hex() if run.vault else None):
            continue  # written under another key (or in clear): run the step again
        if artefacts.is_intact(run.root / step.id, entry):
            ok.add(step.id)
    return ok


def _input_digest(run: _Run, step: StepSpec, entries: Mapping[str, Any]) -> str:
    """What this party's run of ``step`` depends on: component, settings, data, ancestors."""
    me = run.spec.parties[run.me]
    upstream = {a: hashlib.sha256(canonical_json(entries.get(a, {}).get("artefacts", {})))
                .hexdigest() for a in run.spec.ancestors(step.id)}
    return hashlib.sha256(canonical_json({
        "component": step.component, "params": step.params, "security": step.security,
        "party_params": step.party_params.get(run.me, {}), "parties": list(step.parties),
        "data": _fingerprint(me.data), "upstream": upstream,
    })).hexdigest()


def _fingerprint(path: str | None) -> Any:
    """Size and modification time of this party's data file (cheap even at 10 GB)."""
    if path is None:
        return None
    try:
        stat = Path(path).stat()
    except OSError:
        return path
    return [path, stat.st_size, stat.st_mtime_ns]


async def _resume_step(run: _Run, step: StepSpec) -> dict[str, Any]:
    """A step every party completed before: read its artefacts back for later steps."""
    entry = run.manifest["steps"][step.id]
    if run.participant(step):
        run.outputs[step.id] = await asyncio.to_thread(artefacts.load_output,
                                                       run.root / step.id, entry, run.vault)
        entry["status"] = "resumed"
    artefacts.write_manifest(run.root, run.manifest)
    return dict(entry)


async def _execute_step(run: _Run, step: StepSpec) -> dict[str, Any]:
    before = run.ctx.traffic()
    sent, received = before.bytes_sent, before.bytes_received
    start, started_at = time.perf_counter(), _now()
    workdir = artefacts.new_workdir(run.root, step.id) if run.participant(step) else None
    try:
        entry = await _run_and_agree(run, step, workdir)
        if workdir is not None:
            artefacts.commit(workdir, run.root / step.id)
    except BaseException:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    after = run.ctx.traffic()
    entry.update(started_at=started_at, wall_s=round(time.perf_counter() - start, 4),
                 bytes_sent=after.bytes_sent - sent, bytes_received=after.bytes_received - received)
    run.manifest["steps"][step.id] = entry
    artefacts.write_manifest(run.root, run.manifest)
    return entry


async def _run_and_agree(run: _Run, step: StepSpec, workdir: Path | None) -> dict[str, Any]:
    """Run the component while listening for the peers' statuses; stop on the first failure."""
    watcher = asyncio.ensure_future(_watch_peers(run, step))
    try:
        entry: dict[str, Any] = {"status": "not-a-party", "component": step.component}
        if workdir is not None:
            entry = await _run_component_watched(run, step, workdir, watcher)
        await _send_status(run, step, {"ok": True})
        failure = await watcher
        if failure is not None:
            raise PeerStepError(run.me, step.id, *failure)
        return entry
    finally:
        watcher.cancel()


async def _run_component_watched(run: _Run, step: StepSpec, workdir: Path,
                                 watcher: asyncio.Future[tuple[str, str] | None]
                                 ) -> dict[str, Any]:
    component = run.registry.load(step.component)
    task = asyncio.ensure_future(_call_component(run, step, component, workdir))
    racing: set[asyncio.Future[Any]] = {task, watcher}
    done, _ = await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
    if task not in done and watcher.result() is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        culprit, reason = watcher.result() or ("?", "")
        await _send_status(run, step, {"ok": False, "culprit": culprit, "kind": "stopped"})
        raise PeerStepError(run.me, step.id, culprit, reason)
    try:
        return await task
    except Exception as exc:
        blamed = await _blame_peer(watcher, exc, run.me)
        if blamed is not None:
            await _send_status(run, step, {"ok": False, "culprit": blamed[0], "kind": "stopped"})
            raise PeerStepError(run.me, step.id, *blamed) from exc
        await _send_status(run, step, {"ok": False, "culprit": run.me,
                                       "kind": type(exc).__name__})
        raise StepFailedError(run.me, step.id, step.component, exc) from exc


async def _blame_peer(watcher: asyncio.Future[tuple[str, str] | None],
                      exc: Exception, me: str) -> tuple[str, str] | None:
    """When the component failed because a peer failed or vanished, that peer's failure.

    A peer that fails sends its status and then disconnects; this party's
    component may see the disconnect first, so the status gets a moment to
    arrive before the error is put down to the link. When the peers' statuses
    blame this party (they saw its link drop), this party's own link error is
    the better account: it says which link failed and how.
    """
    if not isinstance(exc, NetworkError):
        return None
    with contextlib.suppress(asyncio.TimeoutError):
        failure = await asyncio.wait_for(asyncio.shield(watcher), PEER_STATUS_GRACE_S)
        if failure is not None and failure[0] != me:
            return failure
    if exc.peer is not None:
        return exc.peer, f"disconnected ({type(exc).__name__}); see that party's log"
    return None


async def _call_component(run: _Run, step: StepSpec, component: Resolved,
                          workdir: Path) -> dict[str, Any]:
    """Call the component with its context and inputs; write what it returns into workdir."""
    context = StepContext(
        ctx=run.ctx.subgroup(list(step.parties)).scope(f"step/{step.id}"),
        job_name=run.spec.name, step_id=step.id, party=run.me, parties=run.spec.parties,
        step_parties=list(step.parties), party_params=dict(step.party_params.get(run.me, {})),
        workdir=workdir,
        progress=lambda done, total, what: run.progress.update(step.id, done, total, what),
        options={**run.options, "security": step.security, "job_dir": run.spec.base_dir},
        scratch_vault=run.scratch_vault,
    )
    inputs = {a: run.outputs[a] for a in run.spec.ancestors(step.id) if a in run.outputs}
    handover = _dataset_handover(run, step, context, inputs)
    try:
        output = await component.run(context, inputs, dict(step.params))
    finally:
        if handover is not None:
            handover.close()
    sealing = artefacts.Sealing.for_step(run.vault, run.spec.name, run.me, step.id)
    entry = await asyncio.to_thread(artefacts.write_output, workdir, output, sealing)
    run.outputs[step.id] = output
    entry.update(status="ran", component=step.component, component_version=component.version,
                 component_origin=component.origin, parties=list(step.parties),
                 input_digest=_input_digest(run, step, run.manifest["steps"]))
    return entry


def _dataset_handover(run: _Run, step: StepSpec, context: StepContext,
                      inputs: Mapping[str, StepOutput]) -> DatasetHandOver | None:
    """For a step this party runs on Ray (``party_params.<me>.ray``): its input tables as
    sealed Parquet row partitions, in ``options["datasets"]`` (meshmpc.jobs.datasets)."""
    if context.party_params.get("ray") is None:
        return None
    folder = run.root / f".tmp-{step.id}-datasets-{secrets.token_hex(4)}"
    handover = DatasetHandOver(inputs, folder, run.scratch_vault)
    context.options = {**context.options, "datasets": handover}
    return handover


async def _send_status(run: _Run, step: StepSpec, status: dict[str, Any]) -> None:
    """Tell every peer how this party's step ended (best effort when stopping)."""
    with contextlib.suppress(NetworkError):
        await run.job_ctx.broadcast(f"status/{step.id}", status)
        await run.job_ctx.mesh.flush()


async def _watch_peers(run: _Run, step: StepSpec) -> tuple[str, str] | None:
    """Wait for every peer's status; return (culprit, reason) at the first failure.

    A status blaming this party itself (a peer saw this party's link drop) is
    kept for last: a failure of another party or link, if one comes, says more.
    """
    pending = {asyncio.ensure_future(run.job_ctx.recv(p, f"status/{step.id}")): p
               for p in run.job_ctx.peers}
    blamed_me: tuple[str, str] | None = None
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                failure = _failure_of(run, pending.pop(fut), fut)
                if failure is not None and failure[0] == run.me:
                    blamed_me = blamed_me or failure
                elif failure is not None:
                    return failure
        return blamed_me
    finally:
        for fut in pending:
            fut.cancel()


def _failure_of(run: _Run, peer: str, fut: asyncio.Future[Any]) -> tuple[str, str] | None:
    """(culprit, reason) from one peer's status, or None when the peer finished the step."""
    try:
        status = fut.result()
    except NetworkError as exc:
        return peer, f"disconnected ({type(exc).__name__}); see that party's log"
    if not isinstance(status, dict) or not isinstance(status.get("ok"), bool):
        return peer, "sent a malformed step status"
    if status["ok"]:
        return None
    culprit = status.get("culprit")
    if not isinstance(culprit, str) or culprit not in run.spec.parties:
        culprit = peer
    kind = status.get("kind")
    kind = kind if isinstance(kind, str) and kind.isidentifier() and len(kind) < 64 else "error"
    if culprit == peer and kind != "stopped":
        return peer, f"failed there ({kind}; the details are in that party's error)"
    return culprit, "failed or stopped there (the details are in that party's error)"
