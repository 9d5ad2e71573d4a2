"""Online scores under the partners' grants: purpose and consent per decision, caps refuse."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from meshmpc_credit.decision.screens import _by_purpose, _fields

from meshmpc.data.consent import ConsentError, merkle_root
from meshmpc.net import run
from meshmpc.platform.lookups import NodeLookupGate
from meshmpc.platform.models import ConsentBatch, Dataset
from meshmpc.platform.node import Node, init_node

sys.path.insert(0, str(Path(__file__).parent))
from decision_harness import GOOD_FIELDS, running_joint_service  # noqa: E402

FIELDS = {**GOOD_FIELDS, "loan_amount": 500_000.0}
CAP = 3


def _fin_node(directory: Path) -> tuple[Node, int]:
    """fin's node granting the bank CAP online scores on its joint table."""
    config, _ = init_node(directory / "fin-node", "fin", "root", "correct horse battery",
                          password_memory_mb=8)
    node = Node(config)
    with node.db.session() as s:
        s.add(Dataset(name="joint", uri=str(directory / "fin.features.parquet"), columns=[]))
    grant = node.grants.create("joint", "bank", "sec", components=["online.score"],
                               purposes=["credit_approval"], max_lookups_total=CAP)
    return node, grant


def test_the_partners_cap_of_n_decisions_refers_decision_n_plus_1(tmp_path: Path) -> None:
    node, grant = _fin_node(tmp_path)

    async def main() -> None:
        gates = {"fin": NodeLookupGate(node, "joint", "online.score")}
        async with running_joint_service(tmp_path, gates=gates) as service:
            keys = ["J-3", "J-8", "J-9", "J-10"]
            answers = [await service.decide(k, FIELDS, "credit_approval", f"consent-{k}")
                       for k in keys]
            for answer in answers[:CAP]:
                assert answer["lookups_refused"] == [] and answer["score"] is not None
            last = answers[CAP]
            assert last["decision"] == "refer" and last["score"] is None
            assert last["lookups_refused"] == ["fin"]
            reason = last["reasons"][0]
            assert reason.startswith("lookup refused by fin:") and "capped" in reason
            assert f"grant {grant}" in reason and f"{CAP} of {CAP} in total" in reason
            assert service.replay(last["decision_id"])["identical"] is True
            stored = service.records.get(last["decision_id"])
            assert stored["context"]["consent"] == {"purpose": "credit_approval",
                                                    "reference": "consent-J-10"}
            bare = await service.decide("J-11", FIELDS)  # no consent reference at all
            assert bare["decision"] == "refer" and "carry no consent" in bare["reasons"][0]
            with pytest.raises(ConsentError, match="marketing"):
                await service.decide("J-12", FIELDS, "marketing", "consent-J-12")
            again = await service.decide("J-3", FIELDS, "credit_approval", "consent-J-3")
            assert again["lookups_refused"] == ["fin"]  # the service goes on; fin stays up
            assert again["partners_unavailable"] == []

    run(main())
    with node.db.session() as s:
        batches = s.query(ConsentBatch).order_by(ConsentBatch.id).all()
        assert [(b.kind, b.count, b.purpose) for b in batches] == \
            [("score", 1, "credit_approval")] * CAP
        assert batches[0].merkle_root == merkle_root(["consent-J-3"])
    kinds = [e["kind"] for e in node.audit.search(actor="bank")]
    assert kinds.count("lookup.admit") == CAP and kinds.count("lookup.refused") == 3
    assert node.audit.search(kind="lookup.refused")[1]["detail"]["purpose"] == \
        "credit_approval"  # the decision without a reference: refused for its consent


def test_a_batch_groups_keys_by_purpose() -> None:
    from meshmpc_credit.decision.screens import Consent

    items = [("a", Consent("credit_approval", "r1"), None), ("b", None, None),
             ("c", Consent("loan_monitoring", "r3"), None),
             ("d", Consent("credit_approval", "r4"), None),
             ("e", Consent("credit_approval", None), None)]
    groups = _by_purpose(items)  # type: ignore[arg-type]
    assert [[k for k, _, _ in g] for g in groups] == [["a", "d"], ["b"], ["c"], ["e"]]
    assert _fields(items[0][1], groups[0]) == {  # type: ignore[arg-type]
        "purpose": "credit_approval", "consent": {"count": 2, "root": merkle_root(["r1", "r4"])}}
    assert _fields(items[4][1], groups[3]) == {"purpose": "credit_approval"}  # type: ignore


def test_the_partner_server_gate_from_node_options(tmp_path: Path) -> None:
    from meshmpc_credit.decision.partner import node_gate

    from meshmpc.pir.admit_http import NodeGateError

    assert node_gate("online.score") is None
    own = NodeLookupGate.__new__(NodeLookupGate)
    assert node_gate("online.score", own, "http://x:1") is own  # an explicit gate wins
    with pytest.raises(ValueError, match="go together"):
        node_gate("online.score", node="http://127.0.0.1:9")
    token = tmp_path / "fin.token"
    token.write_text("t0ken")
    token.chmod(0o600)
    with pytest.raises(NodeGateError, match="did not answer"):  # checked at start-up
        node_gate("online.score", node="http://127.0.0.1:9", node_token_file=str(token),
                  dataset="joint")
