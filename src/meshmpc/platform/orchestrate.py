"""Job orchestration between nodes: submit, approve under grants, start together, report status.

The life of a job (states as Kuscia names them)::

    initiator's node                     each participant's node
    submit ── job ───────────────────►   check grants: none -> Rejected at once (reason sent)
                                         auto-approving grant -> approved; else an approver
           ◄────────────────── decision ──
    all approved: Pending ── start ──────►  Pending
    run own side (child process)            run own side (child process)
    Running / step status ◄──────────────►  Running / step status (each party tells every other)
    Succeeded | Failed (party and step named)

Each node runs its side as a child process (``meshmpc job run FILE --party P
--config cluster.toml``) under a memory limit and a time limit; the job's
parties talk to each other over the encrypted mesh, not through this
channel. A node rewrites only its own party's ``data: dataset:NAME`` to the
registered location; the others' paths are never read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from meshmpc.errors import MeshMPCError
from meshmpc.net.config import parse_config
from meshmpc.platform import keyring
from meshmpc.platform.consent import ConsentError, check_request
from meshmpc.platform.grants import GrantError
from meshmpc.platform.jobfiles import DATASET_PREFIX, job_uses, parse_spec
from meshmpc.platform.models import (
    ConsentBatch,
    ConsentRefs,
    Dataset,
    Job,
    JobParty,
    JobStep,
    Peer,
)
from meshmpc.platform.node import Node
from meshmpc.platform.peering import PeerClient, PeerUnavailable

MANIFEST_POLL_S = 0.5
TERMINAL = ("Succeeded", "Failed", "Rejected", "Cancelled")
STEP_STATES = ("Pending", "Running", "Succeeded", "Failed", "Skipped", "NotRun", "Stopped")
"""A step's states: Skipped (the party takes no part in it), NotRun (the job failed, was
rejected or cancelled before it began), Stopped (it was running when the job ended)."""
UNFINISHED = {"Pending": "NotRun", "Running": "Stopped"}


class OrchestrationError(MeshMPCError, RuntimeError):
    """A job cannot go on: named party, named reason."""


def _reopen_steps(job: Job) -> None:
    """A job starting again: every step not yet succeeded is Pending (a resumed run
    reports the completed ones as Succeeded again)."""
    for row in job.steps:
        if row.state not in ("Succeeded", "Skipped"):
            row.state, row.error = "Pending", None


class Orchestrator:
    """The job state machine of one node; its API handlers call into it."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.client = PeerClient(node.party, node.identity.signing_key)
        self.children: dict[str, asyncio.subprocess.Process] = {}
        self.attempts: dict[str, int] = {}
        self.runs: dict[str, int] = {}
        """The job's run number as its initiator set it (1, then +1 per retry): status
        reports carry it, and one from an earlier run is ignored (it would fail a retry)."""
        self.tasks: set[asyncio.Task[Any]] = set()

    # --- helpers -----------------------------------------------------------------------
    def _peer_urls(self) -> dict[str, str | None]:
        with self.node.db.session() as s:
            return {p.party: p.api_url for p in s.scalars(select(Peer))}

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def tell(self, parties: list[str], path: str, payload: dict[str, Any]) -> dict[str, str]:
        """Send to several peers at once; returns the parties that failed, with why."""
        urls = self._peer_urls()
        results = await asyncio.gather(*(self.client.post(p, urls.get(p), path, payload)
                                         for p in parties), return_exceptions=True)
        return {p: str(r) for p, r in zip(parties, results, strict=True)
                if isinstance(r, Exception)}

    def _job(self, s: Any, job_id: str) -> Job:
        job = s.get(Job, job_id)
        if job is None:
            raise OrchestrationError(f"{self.node.party}: no job {job_id!r}")
        return job

    # --- initiator -----------------------------------------------------------------------
    async def submit(self, spec_text: str, purpose: str | None, who: str,
                     consent_refs: list[str] | None = None) -> str:
        count, root = check_request(purpose, consent_refs, self.node.config.purposes)
        spec = parse_spec(spec_text)
        parties = list(spec["parties"])
        if self.node.party not in parties:
            raise OrchestrationError(f"{self.node.party} is not a party of this job; submit it "
                                     f"at one of {parties}")
        job_id = f"{spec.get('name', 'job')}-{time.strftime('%Y%m%d%H%M%S')}-" \
                 f"{secrets.token_hex(3)}"
        self._store(job_id, spec, spec_text, self.node.party, purpose, who, (count, root))
        with self.node.db.session() as s:
            if s.get(ConsentRefs, root) is None:
                s.add(ConsentRefs(merkle_root=root, purpose=str(purpose),
                                  refs=list(consent_refs or [])))
        self.node.audit.append("job.submit", who, {"job": job_id, "purpose": purpose,
                                                   "parties": parties, "consent_count": count,
                                                   "consent_root": root})
        others = [p for p in parties if p != self.node.party]
        failed = await self.tell(others, "/api/v1/peer/jobs", {
            "id": job_id, "spec": spec_text, "initiator": self.node.party, "purpose": purpose,
            "consent": {"count": count, "root": root}})
        if failed:
            reason = "; ".join(f"{p}: {why}" for p, why in failed.items())
            self._finish(job_id, "Failed", f"could not deliver the job: {reason}")
        else:
            await self._maybe_start(job_id)
        return job_id

    def _store(self, job_id: str, spec: dict[str, Any], spec_text: str, initiator: str,
               purpose: str | None, who: str, consent: tuple[int, str] | None) -> None:
        with self.node.db.session() as s:
            if s.get(Job, job_id) is not None:
                raise OrchestrationError(f"job {job_id} exists already")
            job = Job(id=job_id, name=str(spec.get("name", "job")), initiator=initiator,
                      spec=spec_text, purpose=purpose, submitted_by=who,
                      consent_count=consent[0] if consent else None,
                      consent_root=consent[1] if consent else None)
            job.parties = [JobParty(party=p, approval="approved" if p == initiator else
                                    "pending") for p in spec["parties"]]
            job.steps = [JobStep(party=p, step=str(step["id"])) for step in spec["steps"]
                         for p in step.get("parties", spec["parties"])]
            s.add(job)

    async def on_decision(self, sender: str, payload: dict[str, Any]) -> None:
        """A participant's approval or rejection reached the initiator (or a peer)."""
        job_id = str(payload["id"])
        approve = payload.get("approval") == "approved"
        with self.node.db.session() as s:
            job = self._job(s, job_id)
            entry = next((p for p in job.parties if p.party == sender), None)
            if entry is None:
                raise OrchestrationError(f"{sender} is not a party of job {job_id}")
            entry.approval = "approved" if approve else "rejected"
            entry.approver, entry.reason = payload.get("approver"), payload.get("reason")
            entry.decided = time.time()
            initiator = job.initiator
        self.node.audit.append("job.peer_decision", sender, {"job": job_id,
                                                            "approval": entry.approval})
        if not approve:
            reason = f"{sender} rejected the job" + (f": {entry.reason}" if entry.reason else "")
            self._finish(job_id, "Rejected", reason)
            if initiator == self.node.party:
                await self.tell(self._others(job_id, exclude=[sender]),
                                 "/api/v1/peer/jobs/cancel", {"id": job_id, "reason": reason})
        elif initiator == self.node.party:
            await self._maybe_start(job_id)

    def _others(self, job_id: str, exclude: list[str] | None = None) -> list[str]:
        with self.node.db.session() as s:
            job = self._job(s, job_id)
            skip = {self.node.party, *(exclude or [])}
            return [p.party for p in job.parties if p.party not in skip]

    async def _maybe_start(self, job_id: str) -> None:
        with self.node.db.session() as s:
            job = self._job(s, job_id)
            if job.state != "AwaitingApproval" or any(p.approval != "approved"
                                                      for p in job.parties):
                return
            job.state = "Pending"
        self.runs[job_id] = 1
        failed = await self.tell(self._others(job_id), "/api/v1/peer/jobs/start",
                                  {"id": job_id, "run": 1})
        if failed:
            reason = "; ".join(f"{p}: {why}" for p, why in failed.items())
            self._finish(job_id, "Failed", f"could not start: {reason}")
            return
        self._spawn(self.run_local(job_id))

    # --- participant -----------------------------------------------------------------------
    async def on_job(self, sender: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A job arrived from its initiator: store it, check grants, maybe approve at once."""
        spec_text, purpose = str(payload["spec"]), payload.get("purpose")
        if payload.get("initiator") != sender:
            raise OrchestrationError(f"{sender} sent a job naming {payload.get('initiator')!r} "
                                     "as its initiator")
        spec = parse_spec(spec_text)
        job_id = str(payload["id"])
        consent = self._consent_of(payload)
        self._store(job_id, spec, spec_text, sender, purpose, f"{sender}:remote", consent)
        self.node.audit.append("job.received", sender, {"job": job_id, "purpose": purpose})
        try:
            if consent is None or purpose not in self.node.config.purposes:
                raise ConsentError(f"{self.node.party}: job {job_id} from {sender} carries no "
                                   f"consent or an unknown purpose {purpose!r}")
            with self.node.db.session() as s:
                s.add(ConsentBatch(requester=sender, purpose=str(purpose), kind="job",
                                   reference=job_id, count=consent[0], merkle_root=consent[1]))
            grants = self.node.grants.check_job(job_uses(self.node, spec, sender, purpose))
        except (GrantError, ConsentError) as exc:
            await self.decide(job_id, "grants", False, str(exc), notify_async=True)
            return {"approval": "rejected", "reason": str(exc)}
        if grants and all(g.auto_approve for g in grants):
            await self.decide(job_id, f"auto:grant {grants[0].id}", True, None,
                              notify_async=True)
            return {"approval": "approved"}
        return {"approval": "pending"}

    @staticmethod
    def _consent_of(payload: dict[str, Any]) -> tuple[int, str] | None:
        consent = payload.get("consent")
        if not isinstance(consent, dict):
            return None
        count, root = consent.get("count"), consent.get("root")
        if not isinstance(count, int) or count <= 0 or not isinstance(root, str) \
                or len(root) != 64:
            return None
        return count, root

    async def decide(self, job_id: str, approver: str, approve: bool, reason: str | None,
                     notify_async: bool = False) -> None:
        """This node's decision on a job; sent to every other party of it."""
        with self.node.db.session() as s:
            job = self._job(s, job_id)
            if approve:
                self.node.grants.check_job(job_uses(self.node, parse_spec(job.spec),
                                                    job.initiator, job.purpose))
            mine = next(p for p in job.parties if p.party == self.node.party)
            mine.approval = "approved" if approve else "rejected"
            mine.approver, mine.reason, mine.decided = approver, reason, time.time()
            if not approve:
                job.state = "Rejected"
                job.error = f"{self.node.party}: rejected by {approver}" + (
                    f": {reason}" if reason else "")
            initiator = job.initiator
        self.node.audit.append("job.approve" if approve else "job.reject", approver,
                               {"job": job_id, "reason": reason})
        payload = {"id": job_id, "approval": "approved" if approve else "rejected",
                   "approver": approver, "reason": reason}
        targets = self._others(job_id)
        if initiator == self.node.party:
            if approve:
                await self._maybe_start(job_id)
            return
        coro = self.tell(targets, "/api/v1/peer/jobs/decision", payload)
        if notify_async:
            self._spawn(coro)
        else:
            await coro

    async def on_start(self, sender: str, payload: dict[str, Any]) -> None:
        job_id = str(payload["id"])
        with self.node.db.session() as s:
            job = self._job(s, job_id)
            if job.initiator != sender:
                raise OrchestrationError(f"only {job.initiator} may start job {job_id}")
            if any(p.approval != "approved" for p in job.parties):
                raise OrchestrationError(f"{self.node.party}: job {job_id} is not approved by "
                                         f"every party")
            job.state, job.error, job.finished = "Pending", None, None
            _reopen_steps(job)
        self.runs[job_id] = _run_number(payload)
        await self._stop_child(job_id)
        self._spawn(self.run_local(job_id, resume=bool(payload.get("resume"))))

    async def _stop_child(self, job_id: str) -> None:
        """Wait for (or end) a previous run of the job still winding down on this node."""
        child = self.children.get(job_id)
        if child is not None and child.returncode is None:
            try:
                await asyncio.wait_for(child.wait(), 10)
            except TimeoutError:
                child.kill()
                await child.wait()

    async def retry(self, job_id: str, who: str) -> None:
        """Run a failed or cancelled job again on every party, skipping completed steps."""
        with self.node.db.session() as s:
            job = self._job(s, job_id)
            if job.initiator != self.node.party:
                raise OrchestrationError(f"retry job {job_id} at its initiator, {job.initiator}")
            if job.state not in ("Failed", "Cancelled"):
                raise OrchestrationError(f"job {job_id} is {job.state}; only a failed or "
                                         "cancelled job can be retried")
            job.state, job.error, job.finished = "Pending", None, None
            _reopen_steps(job)
        run = self.runs[job_id] = self.runs.get(job_id, 1) + 1
        await self._stop_child(job_id)
        self.node.audit.append("job.retry", who, {"job": job_id, "run": run})
        failed = await self.tell(self._others(job_id), "/api/v1/peer/jobs/start",
                                  {"id": job_id, "resume": True, "run": run})
        if failed:
            reason = "; ".join(f"{p}: {why}" for p, why in failed.items())
            self._finish(job_id, "Failed", f"could not restart: {reason}")
            return
        self._spawn(self.run_local(job_id, resume=True))

    async def on_cancel(self, sender: str, payload: dict[str, Any]) -> None:
        job_id = str(payload["id"])
        child = self.children.get(job_id)
        if child is not None and child.returncode is None:
            child.kill()
        self._finish(job_id, "Cancelled", f"cancelled by {sender}: {payload.get('reason')}")

    async def cancel(self, job_id: str, who: str) -> None:
        await self.on_cancel(self.node.party, {"id": job_id, "reason": f"{who}"})
        await self.tell(self._others(job_id), "/api/v1/peer/jobs/cancel",
                         {"id": job_id, "reason": f"cancelled by {who} at {self.node.party}"})

    async def on_status(self, sender: str, payload: dict[str, Any]) -> None:
        """A party's step states (sent by every party to every other); a report of an
        earlier run of the job (it arrived after a retry began) is ignored."""
        job_id = str(payload["id"])
        if _run_number(payload) < self.runs.get(job_id, 1):
            return
        with self.node.db.session() as s:
            job = self._job(s, job_id)
            for row in job.steps:
                if row.party == sender and row.step in payload.get("steps", {}):
                    info = payload["steps"][row.step]
                    row.state, row.error = info.get("state", row.state), info.get("error")
                    row.bytes_sent = info.get("bytes_sent")
        if payload.get("final_state") == "Failed":
            self._finish(job_id, "Failed", payload.get("error") or f"{sender} failed")

    def _finish(self, job_id: str, state: str, error: str | None) -> None:
        """End a job; after a failure, steps that never started are NotRun, running ones
        Stopped (the step grid then shows what ran, what failed and what never began)."""
        with self.node.db.session() as s:
            job = self._job(s, job_id)
            if job.state in TERMINAL:
                return
            job.state, job.error, job.finished = state, error, time.time()
            if state != "Succeeded":
                for row in job.steps:
                    row.state = UNFINISHED.get(row.state, row.state)
            days = self.node.config.purposes.get(job.purpose or "", 0)
            job.expires = job.finished + days * 86400
        self.node.audit.append(f"job.{state.lower()}", "system", {"job": job_id,
                                                                   "error": error})

    # --- running this party's side --------------------------------------------------------
    def _workdir(self, job_id: str) -> Path:
        path = self.node.config.directory / "jobs" / job_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _local_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """This party's copy of the job with ``dataset:NAME`` resolved to the registered URI."""
        mine = dict(spec["parties"][self.node.party] or {})
        data = str(mine.get("data", ""))
        if data.startswith(DATASET_PREFIX):
            name = data[len(DATASET_PREFIX):]
            with self.node.db.session() as s:
                dataset = s.scalar(select(Dataset).where(Dataset.name == name))
                if dataset is None:
                    raise OrchestrationError(f"{self.node.party}: no dataset {name!r} registered")
                mine["data"] = dataset.uri
        return {**spec, "parties": {**spec["parties"], self.node.party: mine}}

    def _cluster_toml(self, parties: list[str]) -> str:
        """The job's cluster config from this node's peers table, through the net layer's
        own parser and writer (so a bad stored address or key fails here, named)."""
        with self.node.db.session() as s:
            peers = {p.party: (p.address, p.public_key) for p in s.scalars(select(Peer))}
            rotating = {party: keyring.previous_keys(s, party) for party in parties}
            revoked = keyring.revoked_keys(s, parties)
        me = self.node.config
        entries: list[dict[str, Any]] = []
        for party in parties:
            if party == self.node.party:
                entry: dict[str, Any] = {"id": party, "address": me.mesh_address or me.mesh_listen,
                         "public_key": self.node.identity.public_b64,
                         "key_file": str(me.key_path)}
                if me.mesh_address and me.mesh_address != me.mesh_listen:
                    entry["listen"] = me.mesh_listen
            elif party in peers:
                entry = {"id": party, "address": peers[party][0], "public_key": peers[party][1]}
                previous, until = rotating[party]
                if previous and until is not None:
                    entry["previous_keys"] = previous
                    entry["previous_keys_until"] = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime(until))
            else:
                raise OrchestrationError(f"{self.node.party}: peer {party} is not registered "
                                         f"(PUT /api/v1/peers/{party})")
            entries.append(entry)
        cluster: dict[str, Any] = {"id": "node-jobs",
                                   "revocation_file": str(keyring.peer_revocations_path(self.node))}
        if revoked:
            cluster["revoked_keys"] = revoked
        return parse_config({"cluster": cluster, "parties": entries}).to_toml()

    def _limits(self) -> Any:
        memory = self.node.config.job_memory_mb * 2**20

        def apply() -> None:  # runs in the child before exec
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        return apply

    async def run_local(self, job_id: str, resume: bool = False) -> None:
        """Run this party's side as a child process and report its step states.

        Each run is an attempt; a report from an older attempt (a run still
        winding down when a retry began) never changes the job's state.
        """
        attempt = self.attempts[job_id] = self.attempts.get(job_id, 0) + 1
        try:
            with self.node.db.session() as s:
                job = self._job(s, job_id)
                spec = self._local_spec(parse_spec(job.spec))
                job.state, job.started = "Running", time.time()
            workdir = self._workdir(job_id)
            (workdir / "job.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
            (workdir / "cluster.toml").write_text(self._cluster_toml(list(spec["parties"])))
        except MeshMPCError as exc:
            await self._report(job_id, {}, "Failed", str(exc), attempt)
            return
        self.node.audit.append("job.start", "system", {"job": job_id})
        cmd = [sys.executable, "-m", "meshmpc.cli", "job", "run", str(workdir / "job.yaml"),
               "--party", self.node.party, "--config", str(workdir / "cluster.toml"),
               "--out", str(workdir / "out"), "--quiet", *(["--resume"] if resume else [])]
        log = open(workdir / "run.log", "ab")  # noqa: SIM115 (closed below); retries append
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd[2:])}\n".encode())
        log.flush()
        child = await asyncio.create_subprocess_exec(*cmd, stdout=log, stderr=log,
                                                     preexec_fn=self._limits(),
                                                     env={**os.environ})
        self.children[job_id] = child
        watcher = asyncio.ensure_future(self._watch_manifest(job_id, workdir))
        try:
            code = await asyncio.wait_for(child.wait(), self.node.config.job_timeout_s)
        except TimeoutError:
            child.kill()
            code = -9
        finally:
            watcher.cancel()
            log.close()
        steps = self._steps_of(workdir, spec)
        if code == 0:
            await self._report(job_id, steps, "Succeeded", None, attempt)
        else:
            await self._report(job_id, steps, "Failed", self._error_of(workdir, code), attempt)

    def _manifest(self, workdir: Path, spec: dict[str, Any]) -> dict[str, Any]:
        path = workdir / "out" / str(spec.get("name", "job")) / self.node.party / "manifest.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def _steps_of(self, workdir: Path, spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
        states = {"ran": "Succeeded", "resumed": "Succeeded", "failed": "Failed",
                  "not-a-party": "Skipped", "running": "Running"}
        steps = self._manifest(workdir, spec).get("steps", {}) or {}
        return {sid: {"state": states.get(str(e.get("status")), str(e.get("status"))),
                      "error": e.get("error"), "bytes_sent": e.get("bytes_sent")}
                for sid, e in steps.items() if isinstance(e, dict)}

    @staticmethod
    def _error_of(workdir: Path, code: int) -> str:
        if code == -9:
            return "the job ran past its time limit and was stopped"
        lines = (workdir / "run.log").read_text(errors="replace").strip().splitlines()
        last_run = lines[max(i for i, line in enumerate(lines) if line.startswith("--- ")) + 1:] \
            if any(line.startswith("--- ") for line in lines) else lines
        return " | ".join(last_run[-3:]) or f"the job process exited with code {code}"

    async def _watch_manifest(self, job_id: str, workdir: Path) -> None:
        last: dict[str, Any] = {}
        with self.node.db.session() as s:
            spec = parse_spec(self._job(s, job_id).spec)
        while True:
            await asyncio.sleep(MANIFEST_POLL_S)
            steps = self._steps_of(workdir, spec)
            if steps != last:
                last = steps
                self._record_steps(job_id, self.node.party, steps)
                with contextlib.suppress(PeerUnavailable):
                    await self.tell(self._others(job_id), "/api/v1/peer/jobs/status",
                                     {"id": job_id, "steps": steps,
                                      "run": self.runs.get(job_id, 1)})

    def _record_steps(self, job_id: str, party: str, steps: dict[str, dict[str, Any]]) -> None:
        with self.node.db.session() as s:
            for row in self._job(s, job_id).steps:
                if row.party == party and row.step in steps:
                    row.state = steps[row.step]["state"]
                    row.error = steps[row.step].get("error")
                    row.bytes_sent = steps[row.step].get("bytes_sent")

    async def _report(self, job_id: str, steps: dict[str, Any], state: str,
                      error: str | None, attempt: int) -> None:
        if self.attempts.get(job_id) != attempt:
            return  # a superseded run: the current attempt reports for the job
        self._record_steps(job_id, self.node.party, steps)
        message = f"{self.node.party}: {error}" if error else None
        self._finish(job_id, state, message)
        await self.tell(self._others(job_id), "/api/v1/peer/jobs/status",
                         {"id": job_id, "steps": steps, "final_state": state, "error": message,
                          "run": self.runs.get(job_id, 1)})
        if state == "Succeeded":
            self._register_models(job_id)
        from meshmpc.platform.api_peer import exchange_anchors

        await exchange_anchors(self, self._others(job_id))

    def _register_models(self, job_id: str) -> None:
        from meshmpc.platform.model_registry import register_models

        with self.node.db.session() as s:
            name = str(parse_spec(self._job(s, job_id).spec).get("name", "job"))
        register_models(self.node, job_id, self._workdir(job_id) / "out" / name / self.node.party)


def _run_number(payload: dict[str, Any]) -> int:
    """The run number a peer message carries (1 when it carries none)."""
    run = payload.get("run", 1)
    return run if isinstance(run, int) and not isinstance(run, bool) and run > 0 else 1
