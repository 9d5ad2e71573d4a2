/** A validation problem shown where it lies: the node of the strategy it concerns (outlined in
 * the JDM graph too), and for a decision table the rule row and the field column, with the
 * node's message in the row of that rule. The node's validator names them as `rule` =
 * "<node name>" or "<node name>/<rule id or expression key>" and `field` = the variable. */
import type { ReactNode } from "react";
import { useT } from "../i18n";

export interface Check {
  ok: boolean;
  message: string | null;
  rule: string | null;
  field: string | null;
}

interface Column {
  id: string;
  name?: string;
  field?: string;
}

interface JdmNode {
  id: string;
  name?: string;
  type: string;
  content?: { inputs?: Column[]; outputs?: Column[]; rules?: Record<string, unknown>[]; expressions?: { key?: string; value?: string }[] };
}

export interface Issue {
  nodeId: string;
  nodeName: string;
  part: string | null;
  field: string | null;
  columns: (Column & { kind: "input" | "output" })[];
  rules: Record<string, unknown>[];
  expressions: { key?: string; value?: string }[];
}

/** Where in `doc` the failed check points, or null when it names no node of the document. */
export function locateIssue(doc: Record<string, unknown>, check: Check): Issue | null {
  if (check.ok || !check.rule) return null;
  const nodes = (Array.isArray(doc.nodes) ? doc.nodes : []) as JdmNode[];
  const rule = check.rule;
  const node = nodes
    .filter((n) => {
      const label = n.name || n.id;
      return rule === label || rule.startsWith(label + "/");
    })
    .sort((a, b) => (b.name || b.id).length - (a.name || a.id).length)[0];
  if (!node) return null;
  const label = node.name || node.id;
  const content = node.content ?? {};
  return {
    nodeId: node.id,
    nodeName: label,
    part: rule.length > label.length ? rule.slice(label.length + 1) : null,
    field: check.field,
    columns: [...(content.inputs ?? []).map((c) => ({ ...c, kind: "input" as const })), ...(content.outputs ?? []).map((c) => ({ ...c, kind: "output" as const }))],
    rules: content.rules ?? [],
    expressions: content.expressions ?? [],
  };
}

function TableIssue({ issue, message }: { issue: Issue; message: string }): ReactNode {
  const t = useT();
  const badColumn = (c: Column): boolean => !!issue.field && c.field === issue.field;
  const ruleAt = issue.rules.findIndex((r) => r._id === issue.part);
  return (
    <table>
      <thead>
        <tr>
          <th>{t("strategy.rule")}</th>
          {issue.columns.map((c) => (
            <th key={c.id} className={badColumn(c) ? "bad" : undefined} data-field={c.field}>
              {c.name ?? c.id}
              <div className="muted">{c.field}</div>
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {ruleAt < 0 && (
          <tr>
            <td colSpan={issue.columns.length + 1} className="issue-note" role="alert" data-testid="rule-issue">
              {t("strategy.field")} <code>{issue.field}</code>: {message}
            </td>
          </tr>
        )}
        {issue.rules.map((r, i) => (
          <FragmentRow key={String(r._id ?? i)} rule={r} issue={issue} bad={i === ruleAt} message={message} />
        ))}
      </tbody>
    </table>
  );
}

function FragmentRow({ rule, issue, bad, message }: { rule: Record<string, unknown>; issue: Issue; bad: boolean; message: string }): ReactNode {
  const t = useT();
  const cells = (
    <tr className={bad ? "bad-rule" : undefined} data-rule={String(rule._id)} aria-invalid={bad || undefined}>
      <th scope="row">{String(rule._id ?? "")}</th>
      {issue.columns.map((c) => (
        <td key={c.id} className={bad && c.field === issue.field ? "bad" : undefined}>
          <code>{String(rule[c.id] ?? "")}</code>
        </td>
      ))}
    </tr>
  );
  if (!bad) return cells;
  return (
    <>
      {cells}
      <tr>
        <td colSpan={issue.columns.length + 1} className="issue-note" role="alert" data-testid="rule-issue">
          ↑ {t("strategy.rule")} <code>{issue.part}</code>
          {issue.field && (
            <>
              , {t("strategy.field")} <code>{issue.field}</code>
            </>
          )}
          : {message}
        </td>
      </tr>
    </>
  );
}

function ExpressionIssue({ issue, message }: { issue: Issue; message: string }): ReactNode {
  const t = useT();
  return (
    <ul>
      {issue.expressions.map((e, i) => {
        const bad = e.key === issue.part;
        return (
          <li key={i} className={bad ? "bad" : undefined} aria-invalid={bad || undefined}>
            <code>
              {e.key} = {e.value}
            </code>
            {bad && (
              <div className="issue-note" role="alert" data-testid="rule-issue">
                ↑ {t("strategy.field")} <code>{issue.field}</code>: {message}
              </div>
            )}
          </li>
        );
      })}
    </ul>
  );
}

function cssString(text: string): string {
  return text.replace(/["\\]/g, "\\$&");
}

/** The problem beside its rule and field, and the concerned node outlined in the graph. */
export function RuleIssue({ doc, check }: { doc: Record<string, unknown>; check: Check }): ReactNode {
  const t = useT();
  const issue = locateIssue(doc, check);
  const message = check.message ?? "";
  if (!issue) {
    return (
      <div className="error" role="alert" data-testid="rule-issue">
        {message}
      </div>
    );
  }
  const inList = issue.expressions.some((e) => e.key === issue.part);
  return (
    <div className="issue-node" data-testid="issue-node" data-node={issue.nodeName}>
      <style>{`.jdm .react-flow__node[data-id="${cssString(issue.nodeId)}"] { outline: 3px solid #b3261e; outline-offset: 2px; }`}</style>
      <h3>
        {t("strategy.issue")} · {t("strategy.issueAt")}: <code>{issue.nodeName}</code>
      </h3>
      {issue.columns.length > 0 ? (
        <TableIssue issue={issue} message={message} />
      ) : inList ? (
        <ExpressionIssue issue={issue} message={message} />
      ) : (
        <p className="issue-note" role="alert" data-testid="rule-issue">
          {issue.part && <code>{issue.part}</code>} {issue.field && <code>{issue.field}</code>}: {message}
        </p>
      )}
    </div>
  );
}
