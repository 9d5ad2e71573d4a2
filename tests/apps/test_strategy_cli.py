"""``meshmpc credit strategy ...`` with identities and roles from a node's accounts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from meshmpc_credit.cli import main
from meshmpc_credit.strategy.context import build_context
from meshmpc_credit.strategy.document import DEFAULT_STRATEGY
from meshmpc_credit.strategy.store import StrategyStore, actor_from_node

from meshmpc.net.keys import IdentityKey
from meshmpc.platform.audit import AuditLog
from meshmpc.platform.auth import Accounts
from meshmpc.platform.db import NodeDatabase


@pytest.fixture()
def node_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'node.db'}"
    db = NodeDatabase(url)
    db.upgrade()
    accounts = Accounts(db, password_memory_mb=8)
    accounts.create_user("alice", "alice-password-123", ["strategy_editor"])
    accounts.create_user("bob", "bob-password-12345", ["approver"])
    accounts.create_user("carol", "carol-password-123", ["strategy_editor", "approver"])
    return url


def test_roles_come_from_the_node(node_db: str) -> None:
    assert actor_from_node(node_db, "bob").roles == {"approver"}
    with pytest.raises(PermissionError, match="not an active account"):
        actor_from_node(node_db, "mallory")


def test_cli_publish_maker_checker_backtest_and_audit(node_db: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    store_url = f"sqlite:///{tmp_path / 'credit.db'}"
    key = IdentityKey.generate("bank")
    key.save(tmp_path)
    common = ["--db", store_url, "--node-db", node_db, "--audit-key",
              str(tmp_path / "bank.key"), "--party", "bank"]
    strategy = str(DEFAULT_STRATEGY)
    assert main(["strategy", "validate", strategy]) == 0
    assert main(["strategy", "publish", strategy, "--author", "alice", "--approver", "alice",
                 *common]) == 2
    assert "it needs the approver role" in capsys.readouterr().err
    assert main(["strategy", "publish", strategy, "--author", "carol", "--approver", "carol",
                 *common]) == 2
    assert "carol wrote this version" in capsys.readouterr().err
    history = tmp_path / "cases.jsonl"
    history.write_text("\n".join(json.dumps({"context": build_context(
        {"loan_amount": 1e6, "avg_deposit_balance_6m": 5e5}, {}, score, []), "bad": bad})
        for score, bad in [(700, 0), (650, 1), (590, None), (500, None)]))
    assert main(["strategy", "publish", "--version", "1", "--approver", "bob",
                 "--history", str(history), *common]) == 0
    assert "published preloan v1" in capsys.readouterr().out
    state = StrategyStore(store_url).service_state("preloan")
    assert state is not None and state.champion == 1
    entry = AuditLog(node_db, "bank", key.signing_key).search(kind="strategy.publish")[0]
    assert entry["actor"] == "bob" and entry["detail"]["author"] == "alice"
    assert main(["strategy", "publish", "--version", "2", "--approver", "carol",
                 *common]) == 2  # carol wrote v2
    assert StrategyStore(store_url).service_state("preloan") == state
    assert entry["detail"]["backtest"]["approval_rate"] == 0.5
    assert main(["strategy", "list", "--db", store_url]) == 0
    assert "* v1" in capsys.readouterr().out
