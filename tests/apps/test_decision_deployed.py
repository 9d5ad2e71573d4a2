"""The decision service scores with the model version deployed on the bank's node, kept current."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp
import pytest
import uvicorn
from meshmpc_credit.decision.deployed import DeployedModel, ModelSourceError

from meshmpc.jobs.api import StepOutput
from meshmpc.jobs.artefacts import Sealing, write_manifest, write_output
from meshmpc.net import run
from meshmpc.net.local import free_ports
from meshmpc.platform.api import create_app
from meshmpc.platform.model_registry import register_models
from meshmpc.platform.models import Job, JobParty
from meshmpc.platform.node import Node, init_node

sys.path.insert(0, str(Path(__file__).parent))
from decision_harness import PARTNERS, bank_card, running_joint_service  # noqa: E402

PASSWORD = "correct horse battery"
MODEL = "preloan.card.scorecard"
SPEC = """
name: preloan
parties:
  bank: {data: bank.parquet, key: credit_code, label: default_12m}
  gov: {data: "dataset:registry", key: credit_code}
steps:
  - {id: card, component: ml.scorecard}
"""
FIELDS = {"loan_amount": 500_000.0, "collateral_type": "property"}


@contextlib.contextmanager
def serving(app: object) -> Iterator[str]:
    """The node's app behind a real HTTP server on loopback."""
    port = free_ports(1)[0]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,  # type: ignore
                                           log_config=None))  # leaves logging alone
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _token(url: str, name: str, uri: str | None) -> str:
    otp = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0]).now() if uri else None
    r = httpx.post(url + "/api/v1/auth/login", json={"name": name, "password": PASSWORD,
                                                     "otp": otp, "kind": "token"})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _finished_job(node: Node, job_id: str, base_points: float) -> None:
    """A succeeded job whose bank card (sealed by the node's vault) becomes a model version."""
    with node.db.session() as s:
        s.add(Job(id=job_id, name="preloan", initiator="bank", spec=SPEC, state="Succeeded",
                  submitted_by="bank:ana", parties=[JobParty(party="bank", approval="approved")]))
    root = node.config.directory / "jobs" / job_id / "out" / "preloan" / "bank"
    (root / "card").mkdir(parents=True)
    card = bank_card()
    card.base_points = base_points
    entry = write_output(root / "card", StepOutput(models={"scorecard": card.to_dict()},
                                                   report={"base_points": base_points}),
                         Sealing.for_step(node.vault, "preloan", "bank", "card"))
    write_manifest(root, {"steps": {"card": {**entry, "status": "Succeeded"}}})
    assert register_models(node, job_id, root) == [MODEL]


def test_decisions_follow_the_deployed_version_within_the_poll(tmp_path: Path) -> None:
    config, _ = init_node(tmp_path / "bank-node", "bank", "root", PASSWORD,
                          password_memory_mb=8)
    node = Node(config)
    ana_uri = node.accounts.create_user("ana", PASSWORD, ["analyst"])
    appr_uri = node.accounts.create_user("appr", PASSWORD, ["approver"])
    _finished_job(node, "j1", 610.0)
    _finished_job(node, "j2", 700.0)
    poll = 0.3

    async def main(url: str) -> None:
        approver = httpx.Client(base_url=url + "/api/v1", headers={
            "Authorization": f"Bearer {_token(url, 'appr', appr_uri)}"})
        ids = {m["version"]: m["id"] for m in approver.get("/models").json()["items"]}
        source = DeployedModel(url, _token(url, "ana", ana_uri), MODEL)
        with pytest.raises(ModelSourceError, match="deploy one"):
            source.deployed()  # nothing deployed yet: said at start-up
        assert approver.post(f"/models/{ids[1]}/deploy").status_code == 200
        async with running_joint_service(tmp_path) as service:
            await source.start(service, PARTNERS)
            watcher = asyncio.create_task(source.watch(service, PARTNERS, poll))
            first = await service.decide("J-3", FIELDS, "credit_approval", "c-1")
            assert first["model"] == {"name": MODEL, "version": 1, "id": ids[1]}
            assert approver.post(f"/models/{ids[2]}/deploy").status_code == 200
            deployed_at = time.perf_counter()
            while True:
                answer = await service.decide("J-3", FIELDS, "credit_approval", "c-2")
                if answer["model"]["version"] == 2:
                    break
                assert time.perf_counter() - deployed_at < poll + 5, "v2 never arrived"
                await asyncio.sleep(0.05)
            assert answer["score"] == pytest.approx(first["score"] + 90.0, abs=1e-3)
            assert service.records.get(answer["decision_id"])["answer"]["model"]["version"] == 2
            watcher.cancel()
        approver.close()

    with serving(create_app(node, heartbeats=False)) as url:  # no peers; stops at once
        run(main(url))


def test_node_options_go_together_and_a_dead_node_is_named(tmp_path: Path) -> None:
    import argparse

    from meshmpc_credit.decision.serve import model_source

    from meshmpc.userinput import UserError

    args = argparse.Namespace(node="http://127.0.0.1:9", node_token_file=None, model=MODEL)
    with pytest.raises(UserError, match="--node-token-file missing"):
        model_source(args, None)
    assert model_source(argparse.Namespace(node=None, node_token_file=None, model=None),
                        None) is None
    token = tmp_path / "bank.token"
    token.write_text("t0ken\n")
    token.chmod(0o600)
    args.node_token_file = token
    source = model_source(args, None)
    assert source is not None
    with pytest.raises(ModelSourceError, match="did not answer"):
        source.deployed()
