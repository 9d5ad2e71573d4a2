import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiError, errorOf, setCsrf } from "./api";

function reply(status: number, body: string): Response {
  return new Response(body, { status, headers: { "Content-Type": "application/json" } });
}

afterEach(() => {
  vi.restoreAllMocks();
  setCsrf(null);
});

describe("errorOf", () => {
  it("keeps the node's error code and message", async () => {
    const err = await errorOf(reply(403, JSON.stringify({ error: { code: "maker_checker", message: "ana submitted job 1" } })));
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(403);
    expect(err.code).toBe("maker_checker");
    expect(err.message).toBe("ana submitted job 1");
  });

  it("shows the raw text when the body is not the error shape", async () => {
    const err = await errorOf(new Response("<h1>Bad Gateway</h1>", { status: 502, statusText: "Bad Gateway" }));
    expect(err.message).toContain("HTTP 502");
    expect(err.message).toContain("Bad Gateway");
  });
});

describe("api", () => {
  it("sends the CSRF token on writes only", async () => {
    const fetchMock = vi.fn(async () => reply(200, "{}"));
    vi.stubGlobal("fetch", fetchMock);
    setCsrf("tok123");
    await api("/jobs", { method: "POST", body: { spec: "x" } });
    await api("/jobs");
    const calls = fetchMock.mock.calls as unknown as [string, RequestInit][];
    const post = calls[0][1].headers as Record<string, string>;
    const get = calls[1][1].headers as Record<string, string>;
    expect(calls[0][0]).toBe("/api/v1/jobs");
    expect(post["X-CSRF-Token"]).toBe("tok123");
    expect(get["X-CSRF-Token"]).toBeUndefined();
    expect(calls[0][1].body).toBe(JSON.stringify({ spec: "x" }));
  });

  it("turns a network failure into an error with its cause", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => { throw new TypeError("Failed to fetch"); }));
    await expect(api("/health")).rejects.toThrow(/did not answer.*Failed to fetch/);
  });
});
