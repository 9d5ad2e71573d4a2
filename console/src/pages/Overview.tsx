/** Node health, peers with latency and the reason a peer is down, running jobs, recent
 * alerts (the newest in-loan / post-loan monitoring runs and their alert counts), recent audit. */
import type { ReactNode } from "react";
import { api, hasRole, type AuditEntry, type Job, type Me, type Page, type Peer } from "../api";
import { Loading, StateBadge, useLoad, when } from "../components/common";
import { useT } from "../i18n";
import { figureText, type MonitoringRun } from "./Monitoring";

interface Health {
  party: string;
  version: string;
  status: string;
  audit_entries: number;
}

export function Overview({ me, go }: { me: Me; go: (path: string) => void }): ReactNode {
  const t = useT();
  const health = useLoad(() => api<Health>("/health"), [], 5000);
  const peers = useLoad(() => api<Page<Peer>>("/peers?limit=100"), [], 5000);
  const running = useLoad(() => api<Page<Job>>("/jobs?state=Running&limit=20"), [], 3000);
  const alerts = useLoad(() => api<Page<MonitoringRun>>("/monitoring"), [], 15000);
  const canAudit = hasRole(me, "auditor");
  const audit = useLoad(
    () => (canAudit ? api<Page<AuditEntry>>("/audit?limit=10") : Promise.resolve(null)),
    [canAudit],
    5000,
  );
  return (
    <section>
      <h1>{t("nav.overview")}</h1>
      <div className="card">
        <h2>{t("overview.health")}</h2>
        <Loading loaded={health} />
        {health.data && (
          <dl className="facts">
            <dt>{t("overview.party")}</dt>
            <dd data-testid="party">{health.data.party}</dd>
            <dt>{t("peer.status")}</dt>
            <dd>
              <StateBadge state={health.data.status} />
            </dd>
            <dt>{t("overview.version")}</dt>
            <dd>{health.data.version}</dd>
            <dt>{t("overview.auditEntries")}</dt>
            <dd>{health.data.audit_entries}</dd>
          </dl>
        )}
      </div>
      <div className="card">
        <h2>{t("overview.peers")}</h2>
        <Loading loaded={peers} />
        {peers.data && (
          <table>
            <thead>
              <tr>
                <th>{t("peer.party")}</th>
                <th>{t("peer.address")}</th>
                <th>{t("peer.status")}</th>
                <th>{t("peer.reason")}</th>
                <th>{t("peer.latency")}</th>
                <th>{t("peer.lastSeen")}</th>
              </tr>
            </thead>
            <tbody>
              {peers.data.items.map((p) => (
                <tr key={p.party}>
                  <td>{p.party}</td>
                  <td>{p.address}</td>
                  <td>
                    <StateBadge state={p.status || "unknown"} />
                  </td>
                  <td>{p.reason ?? ""}</td>
                  <td>{p.latency_ms == null ? "—" : p.latency_ms.toFixed(1)}</td>
                  <td>{when(p.last_seen)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {peers.data?.items.length === 0 && <p className="muted">{t("empty")}</p>}
      </div>
      <div className="card">
        <h2>{t("overview.running")}</h2>
        <Loading loaded={running} />
        {running.data?.items.length === 0 && <p className="muted">{t("empty")}</p>}
        <ul>
          {running.data?.items.map((j) => (
            <li key={j.id}>
              <a href={"/jobs/" + j.id} onClick={(e) => (e.preventDefault(), go("/jobs/" + j.id))}>
                {j.name} ({j.id})
              </a>{" "}
              <StateBadge state={j.state} />
            </li>
          ))}
        </ul>
      </div>
      <div className="card" data-testid="recent-alerts">
        <h2>{t("overview.recentAlerts")}</h2>
        {alerts.data?.items.length === 0 && <p className="muted">{t("empty")}</p>}
        <ul>
          {alerts.data?.items.slice(0, 5).map((r) => (
            <li key={r.job_id + "/" + r.step}>
              <a href="/monitoring" onClick={(e) => (e.preventDefault(), go("/monitoring"))}>
                {r.job_name} · {r.step}
              </a>{" "}
              · {when(r.finished)} · {figureText(r.figures)} ·{" "}
              {Object.entries(r.tables)
                .map(([name, rows]) => `${name} ${rows}`)
                .join(", ")}
            </li>
          ))}
        </ul>
      </div>
      {canAudit && (
        <div className="card">
          <h2>{t("overview.recentAudit")}</h2>
          <Loading loaded={audit} />
          <ul>
            {audit.data?.items.map((a) => (
              <li key={a.seq}>
                {when(a.ts)} · {a.kind} · {a.actor}
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
