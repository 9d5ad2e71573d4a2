/** Jobs: the list, submission from a file or the form, and one job's DAG, log and decisions. */
import { useState, type ChangeEvent, type FormEvent, type ReactNode } from "react";
import { api, hasRole, TERMINAL_STATES, type Job, type Me, type Page } from "../api";
import { Dag } from "../components/Dag";
import { ErrorBox, Field, Loading, StateBadge, useAction, useLoad, when } from "../components/common";
import { useT } from "../i18n";

export function consentList(text: string): string[] {
  return text
    .split(/[,，\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function SubmitForm({ go, initial, title }: { go: (path: string) => void; initial?: { spec: string; purpose: string | null }; title?: string }): ReactNode {
  const t = useT();
  const [spec, setSpec] = useState(initial?.spec ?? "");
  const [purpose, setPurpose] = useState(initial?.purpose ?? "credit_approval");
  const [consent, setConsent] = useState("");
  const [error, busy, act] = useAction();
  const readFile = (e: ChangeEvent<HTMLInputElement>): void => {
    const file = e.target.files?.[0];
    if (file) void file.text().then(setSpec);
  };
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    void act(async () => {
      const job = await api<Job>("/jobs", {
        method: "POST",
        body: { spec, purpose, consent_refs: consentList(consent) },
      });
      go("/jobs/" + job.id);
    });
  };
  return (
    <form className="card" onSubmit={submit} aria-label={title ?? t("jobs.submit")}>
      <h2>{title ?? t("jobs.submit")}</h2>
      <label className="field">
        <span>{t("jobs.file")}</span>
        <input type="file" accept=".yaml,.yml,.txt" onChange={readFile} />
      </label>
      <label className="field">
        <span>{t("jobs.spec")}</span>
        <textarea name="spec" rows={10} value={spec} onChange={(e) => setSpec(e.target.value)} required />
      </label>
      <Field name="purpose" label={t("jobs.purpose")} value={purpose} onChange={setPurpose} required />
      <Field name="consent" label={t("jobs.consent")} value={consent} onChange={setConsent} />
      <ErrorBox error={error} />
      <button type="submit" disabled={busy}>
        {t("jobs.submit")}
      </button>
    </form>
  );
}

export function JobList({ me, go }: { me: Me; go: (path: string) => void }): ReactNode {
  const t = useT();
  const list = useLoad(() => api<Page<Job>>("/jobs?limit=100"), [], 3000);
  return (
    <section>
      <h1>{t("jobs.title")}</h1>
      {hasRole(me, "analyst") && <SubmitForm go={go} />}
      <div className="card">
        <Loading loaded={list} />
        {list.data?.items.length === 0 && <p className="muted">{t("empty")}</p>}
        {list.data && list.data.items.length > 0 && (
          <table className="jobs">
            <thead>
              <tr>
                <th>{t("jobs.id")}</th>
                <th>{t("jobs.name")}</th>
                <th>{t("jobs.initiator")}</th>
                <th>{t("jobs.state")}</th>
                <th>{t("jobs.created")}</th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((j) => (
                <tr key={j.id} data-job={j.id}>
                  <td>
                    <a href={"/jobs/" + j.id} onClick={(e) => (e.preventDefault(), go("/jobs/" + j.id))}>
                      {j.id}
                    </a>
                  </td>
                  <td>{j.name}</td>
                  <td>{j.initiator}</td>
                  <td>
                    <StateBadge state={j.state} />
                  </td>
                  <td>{when(j.created)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}

function Decision({ job, me, party, onDone }: { job: Job; me: Me; party: string; onDone: () => void }): ReactNode {
  const t = useT();
  const [reason, setReason] = useState("");
  const [error, busy, act] = useAction();
  const mine = job.parties.find((p) => p.party === party);
  if (!hasRole(me, "approver") || mine?.approval !== "pending") return null;
  const decide = (verb: "approve" | "reject") => (e?: FormEvent) => {
    e?.preventDefault();
    void act(() => api(`/jobs/${job.id}/${verb}`, { method: "POST", body: { reason: reason || null } }).then(onDone));
  };
  return (
    <form className="card decision" onSubmit={decide("approve")} aria-label={t("jobs.approve")}>
      <Field name="reason" label={t("jobs.reason")} value={reason} onChange={setReason} />
      <ErrorBox error={error} />
      <button type="submit" disabled={busy}>
        {t("jobs.approve")}
      </button>{" "}
      <button type="button" className="danger" disabled={busy} onClick={() => decide("reject")()}>
        {t("jobs.reject")}
      </button>
    </form>
  );
}

const RETRYABLE = new Set(["Failed", "Cancelled"]);

/** "Submit again": the job's own file (GET /jobs/{id}/spec) in the submit form, to fix a cause
 * that lies in the file itself; the node keeps no consent references, so they are asked again. */
function Resubmit({ id, go }: { id: string; go: (path: string) => void }): ReactNode {
  const t = useT();
  const [open, setOpen] = useState(false);
  const spec = useLoad(() => (open ? api<{ spec: string; purpose: string | null }>(`/jobs/${encodeURIComponent(id)}/spec`) : Promise.resolve(null)), [id, open]);
  if (!open) {
    return (
      <div className="card">
        <button onClick={() => setOpen(true)}>{t("jobs.retry")}</button>
      </div>
    );
  }
  return (
    <>
      <Loading loaded={spec} />
      {spec.data && <SubmitForm go={go} initial={spec.data} title={t("jobs.resubmitTitle")} />}
    </>
  );
}

export function JobDetail({ id, me, party, go }: { id: string; me: Me; party: string; go: (path: string) => void }): ReactNode {
  const t = useT();
  const [done, setDone] = useState(false);
  const job = useLoad(
    () =>
      api<Job>("/jobs/" + encodeURIComponent(id)).then((j) => {
        setDone(TERMINAL_STATES.has(j.state));
        return j;
      }),
    [id],
    done ? undefined : 1500,
  );
  const log = useLoad(() => api<{ log: string }>(`/jobs/${encodeURIComponent(id)}/log`), [id, job.data?.state], undefined);
  const [error, busy, act] = useAction();
  const j = job.data;
  return (
    <section>
      <p>
        <a href="/jobs" onClick={(e) => (e.preventDefault(), go("/jobs"))}>
          ← {t("jobs.back")}
        </a>
      </p>
      <h1>
        {t("jobs.title")} {id}
      </h1>
      <Loading loaded={job} />
      {j && (
        <>
          <div className="card">
            <dl className="facts">
              <dt>{t("jobs.name")}</dt>
              <dd>{j.name}</dd>
              <dt>{t("jobs.state")}</dt>
              <dd data-testid="job-state">
                <StateBadge state={j.state} /> {!done && <span className="muted">({t("jobs.live")})</span>}
              </dd>
              <dt>{t("jobs.initiator")}</dt>
              <dd>{j.initiator}</dd>
              <dt>{t("jobs.purpose")}</dt>
              <dd>{j.purpose ?? "—"}</dd>
            </dl>
            {j.error && (
              <div className="error" role="alert" data-testid="job-error">
                <strong>{t("jobs.errorCause")}:</strong> {j.error}
              </div>
            )}
            {RETRYABLE.has(j.state) && j.initiator === party && hasRole(me, "analyst", "admin") && (
              <p>
                <button disabled={busy} onClick={() => void act(() => api(`/jobs/${encodeURIComponent(id)}/retry`, { method: "POST" }).then(() => (setDone(false), job.reload())))}>
                  {t("retry")}
                </button>{" "}
                <span className="muted">{t("jobs.retryHint")}</span>
              </p>
            )}
            {!TERMINAL_STATES.has(j.state) && hasRole(me, "analyst", "admin") && (
              <button className="danger" disabled={busy} onClick={() => void act(() => api(`/jobs/${id}/cancel`, { method: "POST" }).then(job.reload))}>
                {t("jobs.cancel")}
              </button>
            )}
            <ErrorBox error={error} />
          </div>
          <div className="card">
            <h2>{t("jobs.approvals")}</h2>
            <ul>
              {j.parties.map((p) => (
                <li key={p.party} data-party={p.party}>
                  {p.party}: <StateBadge state={p.approval} /> {p.approver ? `(${p.approver})` : ""} {p.reason ?? ""}
                </li>
              ))}
            </ul>
            <Decision job={j} me={me} party={party} onDone={job.reload} />
          </div>
          <div className="card">
            <Dag job={j} caption={t("jobs.dag")} />
          </div>
          {RETRYABLE.has(j.state) && hasRole(me, "analyst") && <Resubmit id={id} go={go} />}
          <div className="card">
            <h2>{t("jobs.log")}</h2>
            <ErrorBox error={log.error} />
            <pre className="log" tabIndex={0}>{log.data?.log || t("empty")}</pre>
          </div>
        </>
      )}
    </section>
  );
}
