import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { Job } from "../api";
import { ApiError } from "../api";
import { I18n, translator } from "../i18n";
import { consentList } from "../pages/Jobs";
import { Dag, dagGrid } from "./Dag";
import { ErrorBox } from "./common";

afterEach(cleanup);

const job: Job = {
  id: "j1", name: "align-only", initiator: "bank", state: "Failed", error: "gov/align: boom",
  purpose: "credit_approval", submitted_by: "ana", created: 1, started: 2, finished: 3,
  parties: [
    { party: "bank", approval: "approved", approver: null, reason: null },
    { party: "gov", approval: "approved", approver: "appr", reason: null },
  ],
  steps: [
    { party: "bank", step: "align", state: "Succeeded", error: null, started: 2, finished: 3, bytes_sent: 10 },
    { party: "gov", step: "align", state: "Failed", error: "boom", started: 2, finished: 3, bytes_sent: 0 },
    { party: "bank", step: "train", state: "Skipped", error: null, started: null, finished: null, bytes_sent: null },
  ],
};

describe("Dag", () => {
  it("orders steps as listed and puts parties in columns", () => {
    const grid = dagGrid(job);
    expect(grid.steps).toEqual(["align", "train"]);
    expect(grid.parties).toEqual(["bank", "gov"]);
    expect(grid.cell.get("align\u0000gov")).toEqual({ state: "Failed", error: "boom" });
  });

  it("shows each party's state and a failed step's cause", () => {
    const { container } = render(<Dag job={job} caption="steps" />);
    const cell = container.querySelector('td[data-step="align"][data-party="gov"]');
    expect(cell?.textContent).toContain("Failed");
    expect(cell?.textContent).toContain("boom");
    expect(container.querySelector('td[data-step="train"][data-party="gov"]')?.textContent).toBe("—");
  });
});

describe("ErrorBox", () => {
  it("shows the API's code and message in the chosen language", () => {
    render(
      <I18n.Provider value={{ lang: "en", t: translator("en") }}>
        <ErrorBox error={new ApiError(400, "bad_job", "a job needs `steps`")} />
      </I18n.Provider>,
    );
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain("Error (bad_job)");
    expect(alert.textContent).toContain("a job needs `steps`");
  });

  it("renders nothing without an error", () => {
    const { container } = render(<ErrorBox error={null} />);
    expect(container.innerHTML).toBe("");
  });
});

describe("consentList", () => {
  it("splits on commas (either width) and spaces", () => {
    expect(consentList("c-1, c-2，c-3  ")).toEqual(["c-1", "c-2", "c-3"]);
    expect(consentList("")).toEqual([]);
  });
});

import { docDiff } from "./DocDiff";

describe("docDiff", () => {
  it("shows the changed cut-off as one removed and one added line", () => {
    const before = { nodes: [{ name: "grade", rules: [">= 680", ">= 640"] }] };
    const after = { nodes: [{ name: "grade", rules: [">= 700", ">= 640"] }] };
    const changed = docDiff(before, after).filter((l) => l.kind !== " ");
    expect(changed).toEqual([
      { kind: "-", text: '    ">= 680",' },
      { kind: "+", text: '    ">= 700",' },
    ]);
  });

  it("is empty of changes for equal documents", () => {
    expect(docDiff({ a: 1 }, { a: 1 }).every((l) => l.kind === " ")).toBe(true);
  });
});
