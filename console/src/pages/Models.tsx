/** Model versions with lineage, holders and metrics; deploy for those allowed. */
import { Fragment, lazy, Suspense, useState, type ReactNode } from "react";
import { api, hasRole, type Me, type Page } from "../api";
import { ErrorBox, Loading, useAction, useLoad, when } from "../components/common";
import type { Gain } from "../components/curves";
import { useT } from "../i18n";

const ModelCharts = lazy(() => import("../components/ModelCharts"));

interface Evaluation {
  job_id: string;
  step: string;
  party: string;
  report: { auc?: number; ks?: number; gini?: number; evaluated_on?: string; gains?: Gain[] };
}

/** The evaluation of one model version: its figures and the ROC, KS and distribution plots. */
function ModelReport({ id }: { id: number }): ReactNode {
  const t = useT();
  const evaluation = useLoad(() => api<Evaluation>(`/models/${id}/evaluation`), [id]);
  const e = evaluation.data;
  return (
    <div data-testid="model-report">
      <Loading loaded={evaluation} />
      {e && (
        <>
          <p>
            {e.job_id} / {e.step} @ {e.party} · AUC {e.report.auc?.toFixed(4) ?? "—"} · KS {e.report.ks?.toFixed(4) ?? "—"} · Gini {e.report.gini?.toFixed(4) ?? "—"} · {t("models.evaluatedOn")}: {e.report.evaluated_on ?? "—"}
          </p>
          {e.report.gains && e.report.gains.length > 0 ? (
            <Suspense fallback={<p className="muted">{t("loading")}</p>}>
              <ModelCharts gains={e.report.gains} />
            </Suspense>
          ) : (
            <p className="muted">{t("empty")}</p>
          )}
        </>
      )}
    </div>
  );
}

interface ModelVersion {
  id: number;
  name: string;
  version: number;
  job_id: string | null;
  step: string | null;
  lineage: Record<string, unknown>;
  holders: unknown[];
  metrics: Record<string, unknown>;
  deployed: boolean;
  created: number;
}

export function Models({ me }: { me: Me }): ReactNode {
  const t = useT();
  const list = useLoad(() => api<Page<ModelVersion>>("/models?limit=200"), []);
  const [error, busy, act] = useAction();
  const [shown, setShown] = useState<number | null>(null);
  return (
    <section>
      <h1>{t("models.title")}</h1>
      <div className="card">
        <Loading loaded={list} />
        <ErrorBox error={error} />
        {list.data?.items.length === 0 && <p className="muted">{t("empty")}</p>}
        {list.data && list.data.items.length > 0 && (
          <table>
            <thead>
              <tr>
                <th>{t("jobs.name")}</th>
                <th>{t("models.version")}</th>
                <th>{t("models.lineage")}</th>
                <th>{t("models.metrics")}</th>
                <th>{t("models.deployed")}</th>
                <th>{t("models.report")}</th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((m) => (
                <Fragment key={m.id}>
                <tr data-model={m.name}>
                  <td>{m.name}</td>
                  <td>
                    v{m.version} · {when(m.created)}
                  </td>
                  <td>
                    <code>{JSON.stringify({ job: m.job_id, step: m.step, ...m.lineage })}</code>
                  </td>
                  <td>
                    {Object.entries(m.metrics).map(([k, v]) => (
                      <div key={k}>
                        {k}: {typeof v === "number" ? v.toFixed(4) : JSON.stringify(v)}
                      </div>
                    ))}
                  </td>
                  <td>
                    {m.deployed ? "✓" : hasRole(me, "approver") ? (
                      <button disabled={busy} onClick={() => void act(() => api(`/models/${m.id}/deploy`, { method: "POST" }).then(list.reload))}>
                        {t("models.deploy")}
                      </button>
                    ) : "—"}
                  </td>
                  <td>
                    {m.job_id && (
                      <button aria-expanded={shown === m.id} onClick={() => setShown(shown === m.id ? null : m.id)}>
                        {shown === m.id ? t("models.hide") : t("models.report")}
                      </button>
                    )}
                  </td>
                </tr>
                {shown === m.id && (
                  <tr>
                    <td colSpan={6}>
                      <ModelReport id={m.id} />
                    </td>
                  </tr>
                )}
                </Fragment>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
