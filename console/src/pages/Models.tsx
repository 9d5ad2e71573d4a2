/** Model versions with lineage, holders and metrics; deploy for those allowed. */
import type { ReactNode } from "react";
import { api, hasRole, type Me, type Page } from "../api";
import { ErrorBox, Loading, useAction, useLoad, when } from "../components/common";
import { useT } from "../i18n";

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
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((m) => (
                <tr key={m.id}>
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
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
