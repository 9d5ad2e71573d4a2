"""Checks a strategy must pass before it can be published.

1. the document parses and zen-engine compiles it;
2. every variable a decision table or expression reads exists in the decision
   context (:func:`~meshmpc_credit.strategy.context.context_types`) or is
   written by an earlier node, and table cells compare it with the right type;
3. the grade table's cut-offs are monotone (a higher score never gives a worse
   grade) and every grade A-E is reachable: checked by running the grade node
   itself (so the check reads the rules as zen does) at every number its cells
   name, just below and above it, and half-way between neighbours: the table
   is constant between those points, so these scores see every grade it gives.

Every problem names the strategy, the rule (node / row) and the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from meshmpc_credit.strategy.context import GRADES, context_types
from meshmpc_credit.strategy.document import CompiledStrategy, StrategyError, parse_document

GRADE_NODE = "grade"
"""The decision table (by name) that maps ``score`` to ``grade``."""
SCORE_RANGE = (0.0, 1000.0)
"""Scores the grade table must cover (scorecards use 300-900)."""
EPSILON = 0.001
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_NAMES = re.compile(r"(?<![\w.#$])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?!\w|\s*\()")
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_NUMERIC_CELL = re.compile(r"^\s*(?:[<>]=?|==|!=)?\s*-?\d+(?:\.\d+)?\s*$"
                           r"|^\s*[\[\]\(].*\.\..*[\]\[\)]\s*$")
_STRING_CELL = re.compile(r'^\s*"(?:[^"\\]|\\.)*"(?:\s*,\s*"(?:[^"\\]|\\.)*")*\s*$')
_BOOL_CELL = re.compile(r"^\s*(?:true|false)\s*$")


def read_variables(expression: str) -> set[str]:
    """The context paths an expression reads (string literals, functions, ``#`` removed)."""
    names = _NAMES.findall(_STRINGS.sub('""', expression))
    return {n for n in names if n.split(".")[0] not in _KEYWORDS}


def validate(name: str, text: str | bytes) -> CompiledStrategy:
    """Parse, compile and check a strategy; the compiled version or :class:`StrategyError`."""
    doc = parse_document(name, text)
    compiled = CompiledStrategy(name, 0, doc)
    check_variables(name, doc)
    check_grades(compiled)
    return compiled


def _ordered_nodes(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Nodes in a topological order of the edges (so written keys precede their readers)."""
    nodes = {str(n["id"]): n for n in doc["nodes"]}
    incoming = {nid: 0 for nid in nodes}
    for edge in doc["edges"]:
        if edge.get("targetId") in incoming:
            incoming[str(edge["targetId"])] += 1
    ready = [nid for nid, count in incoming.items() if count == 0]
    while ready:
        nid = ready.pop(0)
        yield nodes[nid]
        for edge in doc["edges"]:
            if edge.get("sourceId") == nid and edge.get("targetId") in incoming:
                target = str(edge["targetId"])
                incoming[target] -= 1
                if incoming[target] == 0:
                    ready.append(target)


def check_variables(name: str, doc: dict[str, Any]) -> None:
    """Every read variable exists with the right type (see the module docstring)."""
    types = context_types()
    for node in _ordered_nodes(doc):
        content = node.get("content") or {}
        label = str(node.get("name") or node["id"])
        if node["type"] == "decisionTableNode":
            _check_table(name, label, content, types)
        elif node["type"] == "expressionNode":
            for item in content.get("expressions") or []:
                _check_reads(name, f"{label}/{item.get('key')}", str(item.get("value", "")),
                             types)
                types.setdefault(str(item.get("key")), "any")
        elif node["type"] == "switchNode":
            for statement in content.get("statements") or []:
                _check_reads(name, f"{label}/{statement.get('id')}",
                             str(statement.get("condition", "")), types)


def _check_table(name: str, label: str, content: dict[str, Any], types: dict[str, str]) -> None:
    inputs = content.get("inputs") or []
    for column in inputs:
        field = str(column.get("field") or "")
        if field and field not in types:
            raise StrategyError(name, "reads a variable the decision context does not have",
                                rule=label, field_name=field)
    for row in content.get("rules") or []:
        for column in inputs:
            cell = str(row.get(column.get("id"), "") or "")
            field = str(column.get("field") or "")
            wanted = _cell_type(cell)
            have = types.get(field, "any")
            if cell and wanted and have not in ("any", wanted):
                raise StrategyError(name, f"compares the {have} variable with {wanted} "
                                    f"{cell!r}", rule=f"{label}/{row.get('_id')}",
                                    field_name=field)
    for column in content.get("outputs") or []:
        types.setdefault(str(column.get("field")), "any")
    if content.get("outputPath"):
        types[str(content["outputPath"])] = "array"


def _cell_type(cell: str) -> str | None:
    if _NUMERIC_CELL.match(cell):
        return "number"
    if _STRING_CELL.match(cell):
        return "string"
    if _BOOL_CELL.match(cell):
        return "boolean"
    return None


def _check_reads(name: str, rule: str, expression: str, types: dict[str, str]) -> None:
    for variable in sorted(read_variables(expression)):
        if not _known(variable, types):
            raise StrategyError(name, "reads a variable the decision context does not have",
                                rule=rule, field_name=variable)


def _known(variable: str, types: dict[str, str]) -> bool:
    parts = variable.split(".")
    return any(".".join(parts[:i]) in types and
               (i == len(parts) or types[".".join(parts[:i])] == "any")
               for i in range(len(parts), 0, -1))


def grade_table(compiled: CompiledStrategy) -> dict[str, Any]:
    """The grade decision table node, or :class:`StrategyError` if there is none."""
    for node in compiled.document["nodes"]:
        if node.get("name") == GRADE_NODE and node["type"] == "decisionTableNode":
            return dict(node)
    raise StrategyError(compiled.name, f"no decision table named {GRADE_NODE!r} maps the "
                        "score to a grade", rule=GRADE_NODE, field_name="grade")


def sweep_scores(node: dict[str, Any]) -> list[float]:
    """The scores to probe: range ends, every literal, +-EPSILON, midpoints."""
    lo, hi = SCORE_RANGE
    literals = {float(m) for row in (node.get("content") or {}).get("rules") or []
                for cell in row.values() if isinstance(cell, str)
                for m in _NUMBER.findall(cell)}
    points = {lo, hi} | {p for t in literals for p in (t - EPSILON, t, t + EPSILON)}
    ordered = sorted(p for p in points if lo <= p <= hi)
    mids = {(a + b) / 2 for a, b in zip(ordered, ordered[1:], strict=False)}
    return sorted(set(ordered) | mids)


def grade_sweep(compiled: CompiledStrategy) -> list[tuple[float, str | None, str | None]]:
    """(score, grade, rule id) of the grade table alone at every probe score."""
    node = grade_table(compiled)
    content = dict(node.get("content") or {})
    content.update({"passThrough": False, "outputPath": None, "inputField": None})
    alone = {"nodes": [{"id": "in", "type": "inputNode", "name": "in"},
                       {**node, "id": "g", "content": content},
                       {"id": "out", "type": "outputNode", "name": "out"}],
             "edges": [{"id": "a", "sourceId": "in", "targetId": "g"},
                       {"id": "b", "sourceId": "g", "targetId": "out"}]}
    probe = CompiledStrategy(compiled.name, compiled.version, alone)
    rows = []
    for score in sweep_scores(node):
        result, trace = probe.run({"score": score})
        rule = ((trace.get("g") or {}).get("traceData") or {}).get("rule") or {}
        rows.append((score, result.get("grade"), rule.get("_id")))
    return rows


def check_grades(compiled: CompiledStrategy) -> list[tuple[str, float]]:
    """Monotone cut-offs and every grade reachable; the lowest score of every grade."""
    rows = grade_sweep(compiled)
    rule_of = _rule_by_grade(grade_table(compiled))
    worst = len(GRADES)
    for score, grade, rule in rows:
        if grade not in GRADES:
            raise StrategyError(compiled.name, f"score {score} gives grade {grade!r}, not "
                                f"one of {list(GRADES)}", rule=f"{GRADE_NODE}/{rule}",
                                field_name="score")
        rank = GRADES.index(grade)
        if rank > worst:
            raise StrategyError(compiled.name, f"cut-offs are not monotone: score {score} "
                                f"gives grade {grade}, worse than a lower score",
                                rule=f"{GRADE_NODE}/{rule}", field_name="score")
        worst = rank
    seen = {grade for _, grade, _ in rows}
    for grade in GRADES:
        if grade not in seen:
            raise StrategyError(compiled.name, f"grade {grade} is unreachable (no score in "
                                f"{SCORE_RANGE[0]:g}..{SCORE_RANGE[1]:g} gives it)",
                                rule=f"{GRADE_NODE}/{rule_of.get(grade, '?')}",
                                field_name="score")
    cutoffs: dict[str, float] = {}
    for score, grade, _ in rows:
        cutoffs.setdefault(str(grade), score)
    return sorted(cutoffs.items(), key=lambda kv: GRADES.index(kv[0]))


def _rule_by_grade(node: dict[str, Any]) -> dict[str, str]:
    content = node.get("content") or {}
    out = next((o for o in content.get("outputs") or [] if o.get("field") == "grade"), None)
    if out is None:
        return {}
    return {str(row.get(out["id"], "")).strip('"'): str(row.get("_id"))
            for row in content.get("rules") or []}
