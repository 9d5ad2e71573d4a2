/** Zero-code strategies: versions and the one in service, the JDM editor on a draft, validate
 * (cause with rule and field), simulate on an example applicant, backtest against the version in
 * service, save as a version (strategy_editor), publish or roll back (approver, maker-checker). */
import { lazy, Suspense, useState, type ReactNode } from "react";
import { api, hasRole, type Me, type Page } from "../api";
import { DocDiff } from "../components/DocDiff";
import { RuleIssue, type Check } from "../components/RuleIssue";
import { ErrorBox, Field, Loading, StateBadge, useAction, useLoad, when } from "../components/common";
import { useT } from "../i18n";

const StrategyEditor = lazy(() => import("./StrategyEditor"));

interface Version {
  strategy: string;
  version: number;
  author: string;
  status: string;
  approver: string | null;
  created: number;
  note: string;
  in_service: boolean;
}

interface Simulation {
  decision: string;
  grade: string;
  suggested_limit: number;
  fired: { node?: string; rule?: string }[];
}

type Doc = Record<string, unknown>;

function Draft({ me, name, base, champion, doc, setDoc, onSaved }: { me: Me; name: string; base: number; champion: number | null; doc: Doc; setDoc: (d: Doc) => void; onSaved: () => void }): ReactNode {
  const t = useT();
  // The editor normalises the document once it loads (an onChange without an edit), so "changed"
  // means: differs from the document as it was when the user first touched the editor.
  const [baseline, setBaseline] = useState<string | null>(null);
  const touch = (): void => setBaseline((b) => b ?? JSON.stringify(doc));
  const dirty = baseline !== null && JSON.stringify(doc) !== baseline;
  const [check, setCheck] = useState<(Check & { of: string }) | null>(null);
  const [context, setContext] = useState("");
  const example = useLoad(() => api<Doc>("/strategies/example-context"), []);
  const contextText = context || (example.data ? JSON.stringify(example.data, null, 1) : "");
  const [sim, setSim] = useState<Simulation | null>(null);
  const [history, setHistory] = useState("");
  const [report, setReport] = useState<Record<string, unknown> | null>(null);
  const [served, setServed] = useState<Doc | null>(null);
  const [error, busy, act] = useAction();
  const path = `/strategies/${encodeURIComponent(name)}`;
  const canEdit = hasRole(me, "strategy_editor");
  return (
    <div className="card">
      <h2>
        {t("strategy.draft")} {name} ← v{base}{" "}
        {dirty && <span className="badge state-pending" data-testid="dirty">{t("strategy.dirty")}</span>}
      </h2>
      <div onPointerDownCapture={touch} onKeyDownCapture={touch}>
        <Suspense fallback={<p className="muted">{t("loading")}</p>}>
          <StrategyEditor value={doc} onChange={setDoc} disabled={!canEdit} />
        </Suspense>
      </div>
      <div className="toolbar">
        <button disabled={busy} onClick={() => void act(() => api<Check>(path + "/validate", { method: "POST", body: { document: doc } }).then((c) => setCheck({ ...c, of: JSON.stringify(doc) })))}>
          {t("strategy.validate")}
        </button>
        {champion !== null && (
          <button disabled={busy} onClick={() => void act(async () => setServed((await api<{ document: Doc }>(`${path}/versions/${champion}`)).document))}>
            {t("strategy.compare")} (v{champion})
          </button>
        )}
        {canEdit && (
          <button disabled={busy} onClick={() => void act(() => api(path + "/versions", { method: "POST", body: { document: doc } }).then(() => (setBaseline(null), onSaved())))}>
            {t("strategy.save")}
          </button>
        )}
      </div>
      {check && (
        <div className={check.ok ? "card ok" : "card"} role="status" data-testid="validation">
          {check.of !== JSON.stringify(doc) && (
            <p className="muted" data-testid="stale">
              {t("strategy.stale")}
            </p>
          )}
          {check.ok ? t("strategy.valid") : <RuleIssue doc={doc} check={check} />}
        </div>
      )}
      {served && <DocDiff before={served} after={doc} caption={`v${champion ?? ""} → ${t("strategy.draft")}`} />}
      <label className="field">
        <span>{t("strategy.context")}</span>
        <textarea rows={6} value={contextText} onChange={(e) => setContext(e.target.value)} />
      </label>
      <button disabled={busy} onClick={() => void act(async () => setSim(await api<Simulation>(`${path}/versions/${base}/simulate`, { method: "POST", body: { document: doc, context: JSON.parse(contextText) as unknown } })))}>
        {t("strategy.simulate")}
      </button>
      {sim && (
        <div className="card" data-testid="simulation">
          {sim.decision} · {sim.grade} · {sim.suggested_limit}
          <ul>
            {sim.fired.map((f, i) => (
              <li key={i}>
                {f.node} / {f.rule}
              </li>
            ))}
          </ul>
        </div>
      )}
      <ErrorBox error={example.error} />
      <Field name="history" label={t("strategy.history")} value={history} onChange={setHistory} />
      <button disabled={busy || !history} onClick={() => void act(async () => setReport(await api(`${path}/versions/${base}/backtest`, { method: "POST", body: { document: doc, history } })))}>
        {t("strategy.backtest")}
      </button>
      {report && <pre className="log" data-testid="backtest">{JSON.stringify(report, null, 2)}</pre>}
      <ErrorBox error={error} />
    </div>
  );
}

export function Strategies({ me }: { me: Me }): ReactNode {
  const t = useT();
  const list = useLoad(() => api<Page<Version>>("/strategies"), []);
  const [draft, setDraft] = useState<{ name: string; base: number; champion: number | null; doc: Doc } | null>(null);
  const [error, busy, act] = useAction();
  const open = (v: Version): void => {
    void act(async () => {
      const got = await api<{ document: Doc; champion: number | null }>(`/strategies/${encodeURIComponent(v.strategy)}/versions/${v.version}`);
      setDraft({ name: v.strategy, base: v.version, champion: got.champion, doc: got.document });
    });
  };
  const decide = (v: Version, verb: "publish" | "rollback"): void => {
    void act(() => api(`/strategies/${encodeURIComponent(v.strategy)}/versions/${v.version}/${verb}`, { method: "POST" }).then(list.reload));
  };
  return (
    <section>
      <h1>{t("nav.strategies")}</h1>
      <div className="card">
        <Loading loaded={list} />
        <ErrorBox error={error} />
        {list.data?.items.length === 0 && <p className="muted">{t("empty")}</p>}
        <table>
          <tbody>
            {list.data?.items.map((v) => (
              <tr key={v.strategy + v.version} data-version={v.version}>
                <td>{v.strategy}</td>
                <td>v{v.version}</td>
                <td>
                  <StateBadge state={v.status} /> {v.in_service && <strong>{t("strategy.inService")}</strong>}
                </td>
                <td>
                  {v.author} {v.approver ? `→ ${v.approver}` : ""} · {when(v.created)}
                </td>
                <td>
                  <button disabled={busy} onClick={() => open(v)}>{t("strategy.open")}</button>{" "}
                  {hasRole(me, "approver") && v.status === "draft" && (
                    <button disabled={busy} onClick={() => decide(v, "publish")}>{t("strategy.publish")}</button>
                  )}
                  {hasRole(me, "approver") && v.status !== "draft" && !v.in_service && (
                    <button disabled={busy} onClick={() => decide(v, "rollback")}>{t("strategy.rollback")}</button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {draft && (
        <Draft key={draft.name + draft.base} me={me} name={draft.name} base={draft.base} champion={draft.champion} doc={draft.doc} setDoc={(doc) => setDraft({ ...draft, doc })} onSaved={list.reload} />
      )}
    </section>
  );
}
