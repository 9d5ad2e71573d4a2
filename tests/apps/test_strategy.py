"""The default pre-loan strategy's rules and hit policies, validation and the store."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from meshmpc_credit.strategy.context import build_context, screen_entry
from meshmpc_credit.strategy.document import DEFAULT_STRATEGY, CompiledStrategy, StrategyError
from meshmpc_credit.strategy.store import Actor, MakerCheckerError, StrategyStore
from meshmpc_credit.strategy.validate import check_grades, read_variables, validate
from nacl.signing import SigningKey

from meshmpc.platform.audit import AuditLog

ALICE = Actor("alice", frozenset({"strategy_editor"}))
BOB = Actor("bob", frozenset({"approver"}))
CAROL = Actor("carol", frozenset({"strategy_editor", "approver"}))
BANK = {"loan_amount": 800_000.0, "avg_deposit_balance_6m": 200_000.0}
DOC = json.loads(DEFAULT_STRATEGY.read_text())


@pytest.fixture(scope="module")
def default() -> CompiledStrategy:
    return CompiledStrategy("preloan", 1, DOC)


def ctx(score: float, bank: dict[str, Any] | None = None, unavailable: tuple[str, ...] = (),
        **lists: str) -> dict[str, Any]:
    screens = {p: screen_entry({"list_type": t, "risk_level": "high"}) for p, t in lists.items()}
    return build_context(bank or BANK, screens, score, list(unavailable))


def rules(outcome: Any) -> list[str]:
    return [f"{f['node']}/{f['rule']}" for f in outcome.fired]


@pytest.mark.parametrize(("score", "grade"), [(1000, "A"), (680, "A"), (679.99, "B"),
                                              (640, "B"), (600, "C"), (599, "D"),
                                              (560, "D"), (559.5, "E"), (0, "E")])
def test_first_hit_grade_table_cutoffs(default: CompiledStrategy, score: float,
                                       grade: str) -> None:
    outcome = default.evaluate(ctx(score))
    assert outcome.grade == grade
    assert [r for r in rules(outcome) if r.startswith("grade/")] == [f"grade/grade_{grade}"]


def test_collect_hit_policy_fires_every_matching_screen_rule(default: CompiledStrategy) -> None:
    outcome = default.evaluate(ctx(700, fin="multi_lending", gov="abnormal_operation"))
    screen_rules = [r for r in rules(outcome) if r.startswith("screens/")]
    assert screen_rules == ["screens/fin_multi_lending", "screens/gov_abnormal_operation",
                            "screens/multi_list"]
    assert outcome.result["reasons"] == ["FIN_MULTI_LENDING", "GOV_ABNORMAL_OPERATION",
                                         "MULTI_LIST"]
    assert outcome.decision == "decline"  # two lists -> the multi_list rule declines


def test_expression_nodes_compute_derived_values(default: CompiledStrategy) -> None:
    outcome = default.evaluate(ctx(700, telco="unverified_line"))
    assert outcome.result["listed_count"] == 1
    assert outcome.result["deposit_cover"] == pytest.approx(0.25)
    approved = default.evaluate(ctx(700, {"loan_amount": 9e6, "avg_deposit_balance_6m": 1e6}))
    assert approved.suggested_limit == 5e6  # min(amount, grade A cap) in the finish node
    assert approved.price_band == "P1"


@pytest.mark.parametrize(("context", "route", "decision"), [
    (ctx(700, unavailable=("gov",)), "route_unavailable", "refer"),
    (ctx(700, fin="fraud"), "route_decline", "decline"),
    (ctx(700, telco="collection_target"), "route_refer", "refer"),
    (ctx(700), "route_grade", "approve"),
    (ctx(570), "route_grade", "refer"),
    (ctx(500), "route_grade", "decline"),
])
def test_switch_takes_the_first_true_branch(default: CompiledStrategy, context: dict[str, Any],
                                            route: str, decision: str) -> None:
    outcome = default.evaluate(context)
    assert [r for r in rules(outcome) if r.startswith("route/")] == [f"route/{route}"]
    assert outcome.decision == decision


def test_policy_table_combines_two_inputs(default: CompiledStrategy) -> None:
    thin = default.evaluate(ctx(610, {"loan_amount": 1e6, "avg_deposit_balance_6m": 1e4}))
    assert (thin.decision, rules(thin)[-1]) == ("refer", "policy/policy_C_thin_deposits")
    missing = default.evaluate(ctx(700, {"loan_amount": 1e6}))  # null deposits count as 0
    assert missing.decision == "approve" and missing.result["deposit_cover"] == 0


def test_default_strategy_validates_with_its_cutoffs() -> None:
    compiled = validate("preloan", DEFAULT_STRATEGY.read_text())
    assert check_grades(compiled) == [("A", 680), ("B", 640), ("C", 600), ("D", 560), ("E", 0)]


def test_read_variables_skips_literals_functions_and_closures() -> None:
    assert read_variables('some(flags, #.action == "x.y") and bank.loan_amount > 1') \
        == {"flags", "bank.loan_amount"}


def node(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(n for n in doc["nodes"] if n["name"] == name)


def rejected(change: Any) -> StrategyError:
    doc = copy.deepcopy(DOC)
    change(doc)
    with pytest.raises(StrategyError) as info:
        validate("preloan", json.dumps(doc))
    return info.value


def test_unknown_variable_in_a_table_is_named() -> None:
    error = rejected(lambda d: node(d, "screens")["content"]["inputs"][0].update(
        field="screen.fin.list_typo"))
    assert (error.rule, error.field) == ("screens", "screen.fin.list_typo")
    assert "strategy preloan" in str(error) and "screen.fin.list_typo" in str(error)


def test_unknown_variable_in_an_expression_is_named() -> None:
    error = rejected(lambda d: node(d, "derive")["content"]["expressions"][1].update(
        value="bank.loan_amont / 2"))
    assert (error.rule, error.field) == ("derive/deposit_cover", "bank.loan_amont")


def test_wrong_type_comparison_is_named() -> None:
    error = rejected(lambda d: node(d, "screens")["content"]["rules"][0].update(fin=">= 3"))
    assert (error.rule, error.field) == ("screens/fin_fraud", "screen.fin.list_type")
    assert "string" in str(error)


def test_non_monotone_cutoffs_are_rejected() -> None:
    def swap(doc: dict[str, Any]) -> None:  # C between A and B: 650 gives C, 620 gives B
        rows = node(doc, "grade")["content"]["rules"]
        rows[1]["score"], rows[2]["score"] = "[640..679]", ">= 600"
        rows[1]["grade"], rows[2]["grade"] = '"C"', '"B"'
    error = rejected(swap)
    assert error.field == "score" and error.rule and error.rule.startswith("grade/")
    assert "not monotone" in str(error)


def test_unreachable_grade_names_its_rule() -> None:
    error = rejected(lambda d: node(d, "grade")["content"]["rules"][3].update(score=">= 600"))
    assert (error.rule, error.field) == ("grade/grade_D", "score")
    assert "grade D is unreachable" in str(error)


@pytest.mark.parametrize("text", ["{not json", '{"nodes": 3, "edges": []}', "[]",
                                  '{"nodes": [{"id": "x"}], "edges": []}'])
def test_malformed_documents_are_rejected(text: str) -> None:
    with pytest.raises(StrategyError, match="strategy preloan"):
        validate("preloan", text)


def test_zen_refusal_is_reported_with_the_strategy() -> None:
    doc = copy.deepcopy(DOC)
    doc["nodes"][1]["type"] = "noSuchNode"
    with pytest.raises(StrategyError, match="strategy preloan: zen-engine refused"):
        validate("preloan", json.dumps(doc))


def store_at(tmp_path: Path, audit: AuditLog | None = None) -> StrategyStore:
    return StrategyStore(f"sqlite:///{tmp_path / 'strategies.db'}", audit=audit)


def test_maker_checker_refusals(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    with pytest.raises(MakerCheckerError, match="strategy_editor"):
        store.propose("preloan", DEFAULT_STRATEGY.read_text(), BOB)
    version = store.propose("preloan", DEFAULT_STRATEGY.read_text(), CAROL)
    with pytest.raises(MakerCheckerError, match="carol wrote this version"):
        store.publish("preloan", version, CAROL)  # has the role, but is the maker
    with pytest.raises(MakerCheckerError, match="needs the approver role"):
        store.publish("preloan", version, ALICE)
    assert store.service_state("preloan") is None
    state = store.publish("preloan", version, BOB)
    assert (state.champion, state.generation) == (version, 1)


def test_invalid_version_cannot_be_proposed(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    with pytest.raises(StrategyError):
        store.propose("preloan", "{}", ALICE)
    assert store.versions("preloan") == []


def test_publish_rollback_challenger_and_audit(tmp_path: Path) -> None:
    audit = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", "bank", SigningKey.generate())
    store = store_at(tmp_path, audit)
    v1 = store.propose("preloan", DEFAULT_STRATEGY.read_text(), ALICE)
    store.publish("preloan", v1, BOB)
    doc = copy.deepcopy(DOC)
    node(doc, "grade")["content"]["rules"][0]["score"] = ">= 700"
    v2 = store.propose("preloan", json.dumps(doc), ALICE, note="tighter A")
    assert store.publish("preloan", v2, BOB).champion == v2
    statuses = {r["version"]: r["status"] for r in store.versions("preloan")}
    assert statuses == {v1: "retired", v2: "published"}
    with pytest.raises(MakerCheckerError, match="was never published"):
        store.rollback("preloan", store.propose("preloan", json.dumps(DOC), ALICE), BOB)
    state = store.rollback("preloan", v1, BOB)
    assert (state.champion, state.generation) == (v1, 3)
    state = store.challenge("preloan", v2, 0.25, BOB)
    assert (state.champion, state.challenger, state.challenger_share) == (v1, v2, 0.25)
    kinds = [e["kind"] for e in reversed(audit.search())]
    assert kinds == ["strategy.publish", "strategy.publish", "strategy.rollback",
                     "strategy.challenge"]
    assert all(e["actor"] == "bob" for e in audit.search())
