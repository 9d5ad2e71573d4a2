/** The node's REST API, same origin: cookie session, CSRF header on writes, errors with cause. */

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

/** An API failure carrying the node's own error code and message (shown to the user as is). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

let csrfToken: string | null = null;

export function setCsrf(token: string | null): void {
  csrfToken = token;
}

/** The node's error body `{"error": {"code", "message"}}` turned into an ApiError. */
export async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.message) {
      return new ApiError(response.status, body.error.code ?? "error", body.error.message);
    }
  } catch {
    // not JSON: fall through and show the raw text
  }
  const detail = text.trim().slice(0, 300) || response.statusText;
  return new ApiError(response.status, "http_" + response.status, `HTTP ${response.status}: ${detail}`);
}

/** One request to `/api/v1{path}`; resolves to the JSON body or throws ApiError. */
export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const method = init.method ?? "GET";
  const headers: Record<string, string> = { Accept: "application/json" };
  if (init.body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response: Response;
  try {
    response = await fetch("/api/v1" + path, {
      method,
      headers,
      credentials: "same-origin",
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  } catch (cause) {
    throw new ApiError(0, "network", `the node did not answer (${String(cause)})`);
  }
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}

export interface Me {
  user: string;
  roles: string[];
  csrf?: string | null;
}

export interface Peer {
  party: string;
  address: string;
  api_url: string | null;
  status: string;
  reason: string | null;
  last_seen: number | null;
  latency_ms: number | null;
  throughput_mbps: number | null;
  software_version: string | null;
}

export interface Column {
  name: string;
  type: string;
}

export interface Dataset {
  name: string;
  columns: Column[];
  row_count: number | null;
  published: boolean;
  description: string | null;
  uri?: string;
  key?: string | null;
  quality?: { ok?: boolean; rows?: number; errors?: number; warnings?: number; html?: string };
}

export interface JobParty {
  party: string;
  approval: string;
  approver: string | null;
  reason: string | null;
}

export interface JobStep {
  party: string;
  step: string;
  state: string;
  error: string | null;
  started: number | null;
  finished: number | null;
  bytes_sent: number | null;
}

export interface Job {
  id: string;
  name: string;
  initiator: string;
  state: string;
  error: string | null;
  purpose: string | null;
  submitted_by: string;
  created: number;
  started: number | null;
  finished: number | null;
  parties: JobParty[];
  steps: JobStep[];
}

export interface AuditEntry {
  seq: number;
  ts: number;
  kind: string;
  actor: string;
  detail: Record<string, unknown>;
}

export const TERMINAL_STATES = new Set(["Succeeded", "Failed", "Rejected", "Cancelled"]);

export function hasRole(me: Me | null, ...roles: string[]): boolean {
  return !!me && me.roles.some((r) => roles.includes(r));
}
