import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Job } from "../api";
import { I18n, translator } from "../i18n";
import { JobDetail } from "../pages/Jobs";
import { figureText, Monitoring } from "../pages/Monitoring";
import { curvesFromGains, type Gain } from "./curves";
import { dagGrid, Dag, NOT_RUN, shownState } from "./Dag";
import ModelCharts from "./ModelCharts";
import { locateIssue, RuleIssue } from "./RuleIssue";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const failed: Job = {
  id: "j9", name: "two-steps", initiator: "bank", state: "Failed", error: "bank: no such file x.parquet",
  purpose: "credit_approval", submitted_by: "ana", created: 1, started: 2, finished: 3,
  parties: [{ party: "bank", approval: "approved", approver: null, reason: null }],
  steps: [
    { party: "bank", step: "align", state: "Failed", error: "no such file", started: 2, finished: 3, bytes_sent: 0 },
    { party: "bank", step: "bins", state: "Pending", error: null, started: null, finished: null, bytes_sent: null },
  ],
};

describe("steps that never ran", () => {
  it("shows a Pending step of an ended job as not run, in the chosen language", () => {
    expect(dagGrid(failed).cell.get("bins\u0000bank")?.state).toBe(NOT_RUN);
    const { container } = render(
      <I18n.Provider value={{ lang: "en", t: translator("en") }}>
        <Dag job={failed} caption="steps" />
      </I18n.Provider>,
    );
    expect(container.querySelector('td[data-step="bins"]')?.textContent).toBe("not run");
    expect(container.querySelector('td[data-step="align"]')?.textContent).toContain("Failed");
  });

  it("keeps Pending while the job runs and maps a recorded not-run state", () => {
    expect(shownState("Running", "Pending")).toBe("Pending");
    expect(shownState("Cancelled", "Pending")).toBe(NOT_RUN);
    expect(shownState("Failed", "NotRun")).toBe(NOT_RUN);
    expect(shownState("Failed", "not-run")).toBe(NOT_RUN);
    expect(shownState("Failed", "Succeeded")).toBe("Succeeded");
  });
});

function reply(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

describe("retry of a failed job", () => {
  it("offers retry to an analyst at the initiator and posts it", async () => {
    const calls: [string, string][] = [];
    vi.stubGlobal("fetch", vi.fn(async (url: string, init: RequestInit) => {
      calls.push([init.method ?? "GET", url]);
      if (url.endsWith("/log")) return reply({ log: "" });
      if (url.endsWith("/retry")) return reply({ ...failed, state: "Pending", error: null });
      return reply(failed);
    }));
    render(<JobDetail id="j9" me={{ user: "ana", roles: ["analyst"] }} party="bank" go={() => undefined} />);
    const button = await screen.findByRole("button", { name: "重试" });
    expect(screen.getByTestId("job-error").textContent).toContain("x.parquet");
    fireEvent.click(button);
    await waitFor(() => expect(calls).toContainEqual(["POST", "/api/v1/jobs/j9/retry"]));
  });

  it("fills the submit form with the job's own file to edit and submit again", async () => {
    vi.stubGlobal("fetch", vi.fn(async (url: string) => {
      if (url.endsWith("/log")) return reply({ log: "" });
      if (url.endsWith("/spec")) return reply({ id: "j9", spec: "name: two-steps\n", purpose: "risk_review" });
      return reply(failed);
    }));
    render(<JobDetail id="j9" me={{ user: "ana", roles: ["analyst"] }} party="bank" go={() => undefined} />);
    fireEvent.click(await screen.findByRole("button", { name: "重新提交" }));
    const form = await screen.findByRole("form", { name: "修改任务文件后重新提交" });
    expect((form.querySelector("textarea[name=spec]") as HTMLTextAreaElement).value).toBe("name: two-steps\n");
    expect((form.querySelector("input[name=purpose]") as HTMLInputElement).value).toBe("risk_review");
  });

  it("offers no retry at a party that did not start the job", async () => {
    vi.stubGlobal("fetch", vi.fn(async (url: string) => reply(url.endsWith("/log") ? { log: "" } : failed)));
    render(<JobDetail id="j9" me={{ user: "ana", roles: ["analyst"] }} party="gov" go={() => undefined} />);
    await screen.findByTestId("job-error");
    expect(screen.queryByRole("button", { name: "重试" })).toBeNull();
  });
});

const gains = (bads: number[]): Gain[] =>
  bads.map((b, i) => ({ decile: i + 1, rows: 10, bads: b, bad_rate: b / 10, cum_bad_share: 0, ks: 0 }));

describe("curvesFromGains", () => {
  it("runs the ROC from (0,0) to (1,1) and finds the KS decile", () => {
    const c = curvesFromGains(gains([9, 7, 5, 3, 1, 0, 0, 0, 0, 0]));
    expect(c.roc[0]).toEqual({ fpr: 0, tpr: 0 });
    expect(c.roc[10].fpr).toBeCloseTo(1);
    expect(c.roc[10].tpr).toBeCloseTo(1);
    // 25 bads, 75 goods: after decile 3, 21/25 bads and 9/75 goods
    expect(c.ksMax.decile).toBe(4);
    expect(c.ksMax.gap).toBeCloseTo(24 / 25 - 16 / 75);
    expect(c.distribution.map((d) => d.goods + d.bads)).toEqual(Array(10).fill(10));
    expect(c.auc).toBeGreaterThan(0.85);
  });

  it("gives AUC 0.5 when every decile has the same bad rate, and refuses one class", () => {
    expect(curvesFromGains(gains(Array(10).fill(2))).auc).toBeCloseTo(0.5);
    expect(() => curvesFromGains(gains(Array(10).fill(0)))).toThrow(/goods and bads/);
  });

  it("draws the three plots", () => {
    const { container } = render(<ModelCharts gains={gains([9, 7, 5, 3, 1, 0, 0, 0, 0, 0])} />);
    for (const id of ["roc-plot", "ks-plot", "dist-plot"]) {
      expect(container.querySelector(`[data-testid="${id}"] svg`), id).not.toBeNull();
    }
    expect(container.querySelectorAll('[data-testid="dist-plot"] .recharts-bar-rectangle').length).toBeGreaterThan(0);
  });
});

const doc = {
  nodes: [
    { id: "n1", name: "grade", type: "decisionTableNode", content: {
      inputs: [{ id: "score", name: "joint score", field: "score" }],
      outputs: [{ id: "grade", name: "grade", field: "grade" }],
      rules: [{ _id: "grade_A", score: ">= 680", grade: '"A"' }, { _id: "grade_B", score: '"x"', grade: '"B"' }],
    } },
    { id: "n2", name: "derive", type: "expressionNode", content: { expressions: [{ key: "ratio", value: "loan / nothing" }] } },
  ],
  edges: [],
};

describe("validation problems beside their rule and field", () => {
  it("locates node, rule and field from the validator's names", () => {
    const issue = locateIssue(doc, { ok: false, message: "m", rule: "grade/grade_B", field: "score" });
    expect(issue?.nodeId).toBe("n1");
    expect(issue?.part).toBe("grade_B");
    expect(locateIssue(doc, { ok: false, message: "m", rule: "elsewhere", field: null })).toBeNull();
    expect(locateIssue(doc, { ok: true, message: null, rule: null, field: null })).toBeNull();
  });

  it("puts the message right under the offending rule and marks its field cell", () => {
    const { container } = render(<RuleIssue doc={doc} check={{ ok: false, message: "compares the number variable with string", rule: "grade/grade_B", field: "score" }} />);
    const row = container.querySelector('tr[data-rule="grade_B"]');
    expect(row?.getAttribute("aria-invalid")).toBe("true");
    expect(row?.querySelector("td.bad")?.textContent).toBe('"x"');
    expect(row?.nextElementSibling?.textContent).toContain("compares the number variable with string");
    expect(container.querySelector('tr[data-rule="grade_A"]')?.getAttribute("aria-invalid")).toBeNull();
    expect(container.querySelector("style")?.textContent).toContain('data-id="n1"');
  });

  it("marks the field's column for a table-wide problem and the expression for an expression", () => {
    const column = render(<RuleIssue doc={doc} check={{ ok: false, message: "reads a variable the context does not have", rule: "grade", field: "score" }} />);
    expect(column.container.querySelector('th.bad[data-field="score"]')).not.toBeNull();
    expect(column.getByTestId("rule-issue").textContent).toContain("reads a variable");
    cleanup();
    const expr = render(<RuleIssue doc={doc} check={{ ok: false, message: "unknown", rule: "derive/ratio", field: "nothing" }} />);
    expect(expr.container.querySelector('li[aria-invalid="true"]')?.textContent).toContain("ratio = loan / nothing");
  });
});

describe("figureText", () => {
  it("reads nested figures in one line", () => {
    expect(figureText({ as_of: 9, watch: { red: 1, orange: 2 }, collection: null })).toBe("as_of 9 · watch red 1, orange 2");
  });
});

describe("Monitoring", () => {
  it("lists each run with its kind, alert counts and a link to its HTML report", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => reply({ total: 1, limit: 1, offset: 0, items: [{
      job_id: "m1", job_name: "inloan", step: "monitor", kind: "inloan", finished: 1, figures: { loans: 3 },
      tables: { alerts: 2 }, html: "/api/v1/monitoring/m1/monitor/report.html" }] })));
    render(<Monitoring />);
    const link = await screen.findByRole("link", { name: "HTML 报告" });
    expect(link.getAttribute("href")).toBe("/api/v1/monitoring/m1/monitor/report.html");
    const row = link.closest("tr");
    expect(row?.textContent).toContain("贷中监控");
    expect(row?.textContent).toContain("alerts: 2");
    expect(row?.textContent).toContain("loans 3");
  });
});
