/** A job's steps as a grid: one row per step in order, one column per party, each cell a state. */
import type { ReactNode } from "react";
import type { Job } from "../api";
import { StateBadge } from "./common";

export interface DagGrid {
  steps: string[];
  parties: string[];
  cell: Map<string, { state: string; error: string | null }>;
}

export function dagGrid(job: Job): DagGrid {
  const steps: string[] = [];
  const cell = new Map<string, { state: string; error: string | null }>();
  for (const s of job.steps) {
    if (!steps.includes(s.step)) steps.push(s.step);
    cell.set(s.step + "\u0000" + s.party, { state: s.state, error: s.error });
  }
  const parties = job.parties.map((p) => p.party);
  for (const s of job.steps) if (!parties.includes(s.party)) parties.push(s.party);
  return { steps, parties, cell };
}

export function Dag({ job, caption }: { job: Job; caption: string }): ReactNode {
  const grid = dagGrid(job);
  return (
    <table className="dag">
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">step</th>
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
                <td key={p} data-step={step} data-party={p}>
                  {c ? <StateBadge state={c.state} /> : "—"}
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
