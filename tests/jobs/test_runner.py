"""The runner in one process (in-memory mesh): order, artefacts, failure, resume, privacy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from meshmpc.jobs.artefacts import file_sha256
from meshmpc.jobs.errors import JobMismatchError, PeerStepError, StepFailedError
from meshmpc.jobs.local import run_job_in_memory
from meshmpc.net.memory import MemoryMesh

COMPONENTS = {name: f"jobs_testing_components:{name.split('.')[1]}"
              for name in ("t.emit", "t.add", "t.fail", "t.private")}
PARTIES = ["bank", "gov", "fin"]


def job(steps: list[dict[str, Any]], name: str = "tj") -> dict[str, Any]:
    return {"name": name, "parties": {p: {"key": "id"} for p in PARTIES}, "steps": steps}


def chain(log: Path | None = None) -> list[dict[str, Any]]:
    params = {"log": str(log)} if log else {}
    return [{"id": "first", "component": "t.emit", "params": {"scale": 10, **params}},
            {"id": "pair", "component": "t.add", "after": ["first"],
             "parties": ["bank", "fin"], "params": dict(params)},
            {"id": "all", "component": "t.add", "after": ["pair"], "params": dict(params)}]


def run(raw: dict[str, Any], out: Path, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(run_job_in_memory(raw, out, components=COMPONENTS, **kwargs))


def test_steps_run_in_order_over_the_right_parties_with_all_ancestors(tmp_path: Path) -> None:
    results = run(job(chain()), tmp_path)
    # first: values 0, 10, 20 -> total 30 everywhere
    assert all(results[p]["steps"]["first"]["report"]["total"] == 30 for p in PARTIES)
    # pair: bank and fin only; each sums its own numbers table (v, v+1)
    assert results["bank"]["steps"]["pair"]["report"]["total"] == (0 + 1) + (20 + 21)
    assert results["gov"]["steps"]["pair"]["status"] == "not-a-party"
    # all: gov has no "pair" output, so it sees its "first" numbers; bank and fin see "pair"'s
    assert results["bank"]["steps"]["all"]["report"]["total"] == 42 + (10 + 11) + 42
    assert results["bank"]["steps"]["all"]["report"]["ancestors"] == ["first", "pair"]
    assert results["gov"]["steps"]["all"]["report"]["ancestors"] == ["first"]


def test_artefacts_and_manifest(tmp_path: Path) -> None:
    run(job(chain()), tmp_path)
    root = tmp_path / "tj" / "bank"
    first = root / "first"
    assert pq.read_table(first / "numbers.parquet").column("v").to_pylist() == [0, 1]
    assert json.loads((first / "emit.json").read_text()) == {"value": 0}
    assert json.loads((first / "report.json").read_text())["total"] == 30
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["order"] == ["first", "pair", "all"]
    entry = manifest["steps"]["first"]
    assert entry["status"] == "ran" and entry["component"] == "t.emit"
    assert entry["bytes_sent"] > 0 and entry["wall_s"] >= 0
    assert entry["artefacts"] == {name: file_sha256(first / name)
                                  for name in ("emit.json", "numbers.parquet", "report.json")}
    assert not (tmp_path / "tj" / "gov" / "pair").exists()
    assert not list(root.glob(".tmp-*"))


def test_a_failing_step_stops_every_party_naming_party_and_step(tmp_path: Path) -> None:
    steps = [*chain()[:1], {"id": "boom", "component": "t.fail", "after": ["first"],
                            "params": {"at": "gov", "delay": 0.05}}]
    results = run(job(steps), tmp_path)
    failed = results["gov"]
    assert isinstance(failed, StepFailedError)
    assert "party gov" in str(failed) and "'boom'" in str(failed) and "row 17" in str(failed)
    for party in ("bank", "fin"):
        error = results[party]
        assert isinstance(error, PeerStepError) and error.culprit == "gov"
        assert f"party {party}" in str(error) and "'boom'" in str(error)
        assert "party gov" in str(error)
        assert "row 17" not in str(error)  # the failing party's details stay with it
    for party in PARTIES:
        root = tmp_path / "tj" / party
        assert (root / "first" / "report.json").exists()  # completed before the failure
        assert not (root / "boom").exists()
        assert not list(root.glob(".tmp-*"))  # nothing half-written
        assert "boom" not in json.loads((root / "manifest.json").read_text())["steps"]


def _runs(log: Path, party: str, step: str) -> int:
    path = log / f"{party}.{step}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_resume_skips_completed_steps_and_reruns_changed_ones(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.mkdir()
    first = run(job(chain(log)), tmp_path / "out")
    again = run(job(chain(log)), tmp_path / "out", resume=True)
    assert all(_runs(log, "bank", s) == 1 for s in ("first", "pair", "all"))
    assert again["bank"]["steps"]["all"]["status"] == "resumed"
    assert again["bank"]["steps"]["all"]["report"] == first["bank"]["steps"]["all"]["report"]
    # fin's artefact of "pair" changed on disk: "pair" and everything after it run again
    (tmp_path / "out" / "tj" / "fin" / "pair" / "report.json").write_text("{}")
    third = run(job(chain(log)), tmp_path / "out", resume=True)
    assert third["bank"]["steps"]["first"]["status"] == "resumed"
    assert [_runs(log, "bank", s) for s in ("first", "pair", "all")] == [1, 2, 2]
    assert _runs(log, "gov", "all") == 2
    # a changed param re-runs its step only where the step and its descendants are
    steps = chain(log)
    steps[2]["params"]["extra"] = 1
    run(job(steps), tmp_path / "out", resume=True)
    assert [_runs(log, "bank", s) for s in ("first", "pair", "all")] == [1, 2, 3]
    # without --resume everything runs
    run(job(chain(log)), tmp_path / "out")
    assert [_runs(log, "fin", s) for s in ("first", "pair", "all")] == [2, 3, 4]


class RecordingMesh(MemoryMesh):
    """An in-memory mesh that keeps every object it sends."""

    sent: list[tuple[str, str, Any]]

    async def send(self, peer: str, tag: str, obj: Any) -> None:
        self.sent.append((peer, tag, obj))
        await super().send(peer, tag, obj)


def test_party_params_never_leave_their_party(tmp_path: Path) -> None:
    secret = "gov-private-cut-points-7f3a"
    steps = [{"id": "p", "component": "t.private",
              "party_params": {"gov": {"secret": secret, "cuts": [1, 2]}}}]
    meshes = RecordingMesh.group(PARTIES)
    for mesh in meshes.values():
        mesh.sent = []
    results = run(job(steps), tmp_path, meshes=meshes)
    assert results["gov"]["steps"]["p"]["report"]["my_secret"] == secret
    assert results["bank"]["steps"]["p"]["report"]["seen"] == []  # only its own entry
    assert results["bank"]["steps"]["p"]["report"]["counts"]["gov"] == 2
    wire = repr([m.sent for m in meshes.values()])
    assert "status/p" in wire and secret not in wire and "cuts" not in wire


def test_parties_with_different_job_files_stop_before_any_step(tmp_path: Path) -> None:
    meshes = MemoryMesh.group(PARTIES)

    async def both() -> list[Any]:
        from meshmpc.jobs.registry import ComponentRegistry
        from meshmpc.jobs.runner import run_party_job
        from meshmpc.jobs.spec import load_job
        from meshmpc.net import Context

        registry = ComponentRegistry(COMPONENTS)
        specs = {p: load_job(job(chain()), registry.names()) for p in PARTIES}
        specs["fin"] = load_job(job(chain()[:1]), registry.names())
        return await asyncio.gather(*(run_party_job(Context(meshes[p]), specs[p], tmp_path,
                                                    registry=registry) for p in PARTIES),
                                    return_exceptions=True)

    outcomes = asyncio.run(both())
    assert all(isinstance(o, JobMismatchError) for o in outcomes)
    assert "party fin runs a different job file" in str(outcomes[0])
    assert not (tmp_path / "tj" / "bank" / "first").exists()


def test_a_component_that_returns_the_wrong_type_fails_its_step(tmp_path: Path) -> None:
    async def wrong(step: Any, inputs: Any, params: Any) -> Any:
        return {"not": "a StepOutput"}

    results = asyncio.run(run_job_in_memory(
        job([{"id": "w", "component": "t.wrong"}]), tmp_path, components={"t.wrong": wrong}))
    assert all(isinstance(r, StepFailedError) for r in results.values())
    assert "StepOutput" in str(results["bank"])
    assert not (tmp_path / "tj" / "bank" / "w").exists()


@pytest.mark.parametrize("name", ["t.emit"])
def test_progress_reports_reach_the_sink(tmp_path: Path, name: str) -> None:
    from meshmpc.jobs.progress import FileProgress
    from meshmpc.jobs.registry import ComponentRegistry
    from meshmpc.jobs.runner import run_party_job
    from meshmpc.jobs.spec import load_job
    from meshmpc.net import Context

    registry = ComponentRegistry(COMPONENTS)
    spec = load_job(job([{"id": "e", "component": name}]), registry.names())
    meshes = MemoryMesh.group(PARTIES)
    sinks = {p: FileProgress(tmp_path / f"{p}.json") for p in PARTIES}

    async def all_parties() -> None:
        await asyncio.gather(*(run_party_job(Context(meshes[p]), spec, tmp_path / "out",
                                             registry=registry, progress=sinks[p])
                               for p in PARTIES))

    asyncio.run(all_parties())
    state = json.loads((tmp_path / "bank.json").read_text())
    assert state["status"] == "finished" and state["done"] == 2 and state["total"] == 2


def test_a_killed_run_leaves_only_a_hidden_folder_that_the_next_run_removes(
        tmp_path: Path) -> None:
    stale = tmp_path / "tj" / "bank" / ".tmp-first-deadbeef"
    stale.mkdir(parents=True)
    (stale / "numbers.parquet").write_bytes(b"half")
    run(job(chain()[:1]), tmp_path, resume=True)
    assert not stale.exists()
    assert (tmp_path / "tj" / "bank" / "first" / "numbers.parquet").exists()
