/** A job's steps as a grid: one row per step in order, one column per party, each cell a state.
 * A step that never ran because the job ended first (failed, cancelled, rejected) shows as
 * "not run", whether the node left it Pending or recorded it as not run. */
import type { ReactNode } from "react";
import type { Job } from "../api";
import { useT } from "../i18n";
import { StateBadge } from "./common";

export interface DagGrid {
  steps: string[];
  parties: string[];
  cell: Map<string, { state: string; error: string | null }>;
}

const ENDED_EARLY = new Set(["Failed", "Cancelled", "Rejected"]);
const NEVER_STARTED = new Set(["pending", "notrun", "not-run", "not_run", "not run", "notstarted"]);
export const NOT_RUN = "NotRun";

/** The state a cell shows: NOT_RUN for a step still waiting in a job that has ended. */
export function shownState(jobState: string, stepState: string): string {
  const waiting = NEVER_STARTED.has(stepState.toLowerCase());
  if (waiting && (ENDED_EARLY.has(jobState) || stepState.toLowerCase() !== "pending")) return NOT_RUN;
  return stepState;
}

export function dagGrid(job: Job): DagGrid {
  const steps: string[] = [];
  const cell = new Map<string, { state: string; error: string | null }>();
  for (const s of job.steps) {
    if (!steps.includes(s.step)) steps.push(s.step);
    cell.set(s.step + "\u0000" + s.party, { state: shownState(job.state, s.state), error: s.error });
  }
  const parties = job.parties.map((p) => p.party);
  for (const s of job.steps) if (!parties.includes(s.party)) parties.push(s.party);
  return { steps, parties, cell };
}

function Cell({ state }: { state: string }): ReactNode {
  const t = useT();
  if (state === NOT_RUN) return <span className="badge state-notrun">{t("step.notRun")}</span>;
  return <StateBadge state={state} />;
}

export function Dag({ job, caption }: { job: Job; caption: string }): ReactNode {
  const t = useT();
  const grid = dagGrid(job);
  return (
    <table className="dag">
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">{t("step.col")}</th>
          {grid.parties.map((p) => (
            <th scope="col" key={p}>
              {p}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {grid.steps.map((step, i) => (
          <tr key={step}>
            <th scope="row">
              {i > 0 ? "↓ " : ""}
              {step}
            </th>
            {grid.parties.map((p) => {
              const c = grid.cell.get(step + "\u0000" + p);
              return (
                <td key={p} data-step={step} data-party={p} data-state={c?.state}>
                  {c ? <Cell state={c.state} /> : "—"}
                  {c?.error ? <div className="cause">{c.error}</div> : null}
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
