/** The audit log: search by kind and actor, and verify the hash chain and signed checkpoints. */
import { useState, type FormEvent, type ReactNode } from "react";
import { api, type AuditEntry, type Page } from "../api";
import { ErrorBox, Field, Loading, useAction, useLoad, when } from "../components/common";
import { useT } from "../i18n";

interface VerifyReport {
  ok: boolean;
  entries: number;
  checkpoints: number;
  problems: string[];
}

export function Audit(): ReactNode {
  const t = useT();
  const [kind, setKind] = useState("");
  const [actor, setActor] = useState("");
  const [query, setQuery] = useState("");
  const list = useLoad(() => api<Page<AuditEntry>>("/audit?limit=100" + query), [query]);
  const [report, setReport] = useState<VerifyReport | null>(null);
  const [error, busy, act] = useAction();
  const search = (e: FormEvent): void => {
    e.preventDefault();
    const params = new URLSearchParams();
    if (kind) params.set("kind", kind);
    if (actor) params.set("actor", actor);
    setQuery(params.size ? "&" + params.toString() : "");
  };
  return (
    <section>
      <h1>{t("audit.title")}</h1>
      <form className="card inline" onSubmit={search} aria-label={t("audit.search")}>
        <Field name="kind" label={t("audit.kind")} value={kind} onChange={setKind} />
        <Field name="actor" label={t("audit.actor")} value={actor} onChange={setActor} />
        <button type="submit">{t("audit.search")}</button>{" "}
        <button type="button" disabled={busy} onClick={() => void act(() => api<VerifyReport>("/audit/verify").then(setReport))}>
          {t("audit.verify")}
        </button>
      </form>
      <ErrorBox error={error} />
      {report && (
        <div className={report.ok ? "card ok" : "error"} role="status" data-testid="verify">
          {report.ok ? t("audit.ok") : t("audit.bad")}: {report.entries} / {report.checkpoints}
          {report.problems.map((p) => (
            <div key={p}>{p}</div>
          ))}
        </div>
      )}
      <div className="card">
        <Loading loaded={list} />
        <table>
          <thead>
            <tr>
              <th>#</th>
              <th>{t("audit.time")}</th>
              <th>{t("audit.kind")}</th>
              <th>{t("audit.actor")}</th>
              <th>{t("audit.detail")}</th>
            </tr>
          </thead>
          <tbody>
            {list.data?.items.map((a) => (
              <tr key={a.seq}>
                <td>{a.seq}</td>
                <td>{when(a.ts)}</td>
                <td>{a.kind}</td>
                <td>{a.actor}</td>
                <td>
                  <code>{JSON.stringify(a.detail)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
