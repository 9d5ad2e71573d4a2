/** In-loan and post-loan monitoring: every finished credit.inloan / credit.postloan step on this
 * node (GET /monitoring), its headline figures and alert counts, its first alert rows and a
 * link to its bilingual HTML report. Read-only. */
import { Fragment, useState, type ReactNode } from "react";
import { api, type Page } from "../api";
import { Loading, useLoad, when } from "../components/common";
import { useT, type Key } from "../i18n";

export interface MonitoringRun {
  job_id: string;
  job_name: string;
  step: string;
  kind: "inloan" | "postloan";
  finished: number | null;
  figures: Record<string, unknown>;
  tables: Record<string, number>;
  html: string;
}

interface RunDetail extends MonitoringRun {
  rows: Record<string, Record<string, unknown>[]>;
}

/** One line of headline figures: "loans 120 · months 12" or "watch red 3, orange 5". */
export function figureText(figures: Record<string, unknown>): string {
  return Object.entries(figures)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) =>
      typeof v === "object"
        ? `${k} ${Object.entries(v as Record<string, unknown>).map(([a, b]) => `${a} ${typeof b === "number" ? +b.toFixed(2) : String(b)}`).join(", ")}`
        : `${k} ${String(v)}`,
    )
    .join(" · ");
}

function Rows({ name, rows }: { name: string; rows: Record<string, unknown>[] }): ReactNode {
  const t = useT();
  if (rows.length === 0) return <p className="muted">{name}: {t("empty")}</p>;
  const columns = Object.keys(rows[0]);
  return (
    <table data-table={name}>
      <caption>
        {name} ({t("monitor.rows")})
      </caption>
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c}>{c}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((row, i) => (
          <tr key={i}>
            {columns.map((c) => (
              <td key={c}>{typeof row[c] === "number" ? +(row[c] as number).toFixed(4) : String(row[c] ?? "")}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Detail({ run }: { run: MonitoringRun }): ReactNode {
  const detail = useLoad(() => api<RunDetail>(`/monitoring/${encodeURIComponent(run.job_id)}/${encodeURIComponent(run.step)}`), [run.job_id, run.step]);
  return (
    <div data-testid="monitor-detail">
      <Loading loaded={detail} />
      {detail.data && Object.entries(detail.data.rows).map(([name, rows]) => <Rows key={name} name={name} rows={rows} />)}
    </div>
  );
}

export function Monitoring(): ReactNode {
  const t = useT();
  const list = useLoad(() => api<Page<MonitoringRun>>("/monitoring"), []);
  const [open, setOpen] = useState<string | null>(null);
  return (
    <section>
      <h1>{t("monitor.title")}</h1>
      <div className="card">
        <Loading loaded={list} />
        {list.data?.items.length === 0 && <p className="muted">{t("empty")}</p>}
        {list.data && list.data.items.length > 0 && (
          <table className="monitoring">
            <thead>
              <tr>
                <th>{t("monitor.kind")}</th>
                <th>{t("monitor.job")}</th>
                <th>{t("monitor.finished")}</th>
                <th>{t("monitor.figures")}</th>
                <th>{t("monitor.alerts")}</th>
                <th>{t("monitor.html")}</th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((run) => {
                const key = run.job_id + "/" + run.step;
                return (
                  <Fragment key={key}>
                    <tr data-run={key}>
                      <td>{t(("monitor." + run.kind) as Key)}</td>
                      <td>
                        {run.job_name} <span className="muted">({run.job_id} / {run.step})</span>
                      </td>
                      <td>{when(run.finished)}</td>
                      <td>{figureText(run.figures)}</td>
                      <td>
                        {Object.entries(run.tables).map(([name, n]) => `${name}: ${n}`).join(", ")}{" "}
                        <button aria-expanded={open === key} onClick={() => setOpen(open === key ? null : key)}>
                          {t("monitor.show")}
                        </button>
                      </td>
                      <td>
                        <a href={run.html} target="_blank" rel="noreferrer">
                          {t("monitor.html")}
                        </a>
                      </td>
                    </tr>
                    {open === key && (
                      <tr>
                        <td colSpan={6}>
                          <Detail run={run} />
                        </td>
                      </tr>
                    )}
                  </Fragment>
                );
              })}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
