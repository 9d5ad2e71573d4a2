"""A strategy version: a JDM document compiled once by zen-engine, evaluated many times.

:class:`CompiledStrategy` is immutable: the decision service swaps whole
objects when a new version is published, so a decision in flight keeps the
version it started with. :meth:`CompiledStrategy.evaluate` runs the graph with
zen's trace on and returns the rules that fired (decision-table rows and switch
branches, in evaluation order) next to the decision.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zen

from meshmpc.errors import MeshMPCError
from meshmpc_credit.strategy.context import DECISIONS, GRADES

DEFAULT_STRATEGY = Path(__file__).with_name("preloan_default.json")
"""The pre-loan strategy shipped with the package (screens, grade cut-offs, terms)."""

_ENGINE = zen.ZenEngine()


class StrategyError(MeshMPCError, ValueError):
    """A strategy is malformed or produced a bad result; names strategy, rule and field."""

    def __init__(self, strategy: str, problem: str, rule: str | None = None,
                 field_name: str | None = None) -> None:
        self.strategy, self.rule, self.field = strategy, rule, field_name
        where = "".join([f", rule {rule}" if rule else "",
                         f", field {field_name}" if field_name else ""])
        super().__init__(f"strategy {strategy}{where}: {problem}")


@dataclass(frozen=True)
class Outcome:
    """What a strategy decided for one context, and why."""

    decision: str
    grade: str
    suggested_limit: float
    price_band: str
    fired: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision, "grade": self.grade,
                "suggested_limit": self.suggested_limit, "price_band": self.price_band,
                "fired": self.fired}


def parse_document(name: str, text: str | bytes) -> dict[str, Any]:
    """The JDM document as a dict; malformed JSON or graph shape raises :class:`StrategyError`."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StrategyError(name, f"not a JSON document: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list) \
            or not isinstance(doc.get("edges"), list):
        raise StrategyError(name, "a JDM document needs a 'nodes' list and an 'edges' list")
    for i, node in enumerate(doc["nodes"]):
        if not isinstance(node, dict) or not {"id", "type"} <= set(node):
            raise StrategyError(name, f"node #{i} needs an 'id' and a 'type'")
    return doc


def document_hash(doc: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON, stored with every version and decision."""
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class CompiledStrategy:
    """One version of one strategy, compiled once (thread-safe, immutable)."""

    def __init__(self, name: str, version: int, doc: dict[str, Any]) -> None:
        self.name, self.version, self.document = name, version, doc
        self.sha256 = document_hash(doc)
        self.nodes = {str(n["id"]): n for n in doc["nodes"]}
        try:
            self._decision = _ENGINE.create_decision(json.dumps(doc))
        except RuntimeError as exc:
            raise StrategyError(name, f"zen-engine refused the document: "
                                f"{_first_line(exc)}") from None

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}"

    def run(self, context: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """zen's raw result and trace; evaluation errors name the strategy version."""
        try:
            answer = self._decision.evaluate(context, {"trace": True})
        except RuntimeError as exc:
            raise StrategyError(self.label, f"evaluation failed: {_first_line(exc)}") from None
        return answer.get("result") or {}, answer.get("trace") or {}

    def evaluate(self, context: dict[str, Any]) -> Outcome:
        """Decision, grade, terms and the rules that fired for ``context``."""
        result, trace = self.run(context)
        return Outcome(decision=self._choice(result, "decision", DECISIONS),
                       grade=self._choice(result, "grade", GRADES),
                       suggested_limit=self._number(result, "suggested_limit"),
                       price_band=str(result.get("price_band") or ""),
                       fired=self.fired_rules(trace), result=_outputs(result))

    def fired_rules(self, trace: dict[str, Any]) -> list[dict[str, Any]]:
        """Decision-table rows and switch branches taken, in evaluation order."""
        fired: list[dict[str, Any]] = []
        for node_id, entry in sorted(trace.items(), key=lambda kv: kv[1].get("order", 0)):
            kind = self.nodes.get(node_id, {}).get("type")
            data = entry.get("traceData")
            name = str(entry.get("name") or node_id)
            if kind == "decisionTableNode" and data:
                for row in data if isinstance(data, list) else [data]:
                    fired.append({"node": name, "rule": row.get("rule", {}).get("_id")})
            elif kind == "switchNode" and isinstance(data, dict):
                for statement in data.get("statements") or []:
                    fired.append({"node": name, "rule": statement.get("id")})
        return fired

    def _choice(self, result: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
        value = result.get(key)
        if value not in allowed:
            raise StrategyError(self.label, f"output {value!r} is not one of {list(allowed)}",
                                field_name=key)
        return str(value)

    def _number(self, result: dict[str, Any], key: str) -> float:
        value = result.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise StrategyError(self.label, f"output {value!r} is not a number", field_name=key)
        return float(value)


def _outputs(result: dict[str, Any]) -> dict[str, Any]:
    """The strategy's own outputs (the pass-through context removed)."""
    return {k: v for k, v in result.items() if k not in ("bank", "screen", "unavailable")}


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def load_strategy(name: str, path: Path, version: int = 0) -> CompiledStrategy:
    """Read and compile a JDM file (version 0 = not from the store)."""
    return CompiledStrategy(name, version, parse_document(name, path.read_bytes()))
