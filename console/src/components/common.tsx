/** Shared pieces: the error box (the API's cause, never a blank page), loading, form fields. */
import { useCallback, useEffect, useState, type ReactNode } from "react";
import { ApiError } from "../api";
import { useT } from "../i18n";

export function ErrorBox({ error }: { error: unknown }): ReactNode {
  const t = useT();
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof ApiError ? ` (${error.code})` : "";
  return (
    <div className="error" role="alert">
      <strong>
        {t("error")}
        {code}:
      </strong>{" "}
      {message}
    </div>
  );
}

export interface Loaded<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Load once, then every `intervalMs` when given; keeps the last data while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], intervalMs?: number): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  useEffect(() => {
    let live = true;
    load()
      .then((value) => live && (setData(value), setError(null)))
      .catch((err: unknown) => live && setError(err))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  useEffect(() => {
    if (!intervalMs) return;
    const id = window.setInterval(reload, intervalMs);
    return () => window.clearInterval(id);
  }, [intervalMs, reload]);
  return { data, error, loading, reload };
}

export function Loading({ loaded }: { loaded: Loaded<unknown> }): ReactNode {
  const t = useT();
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  if (loaded.loading && loaded.data === null) return <p className="muted">{t("loading")}</p>;
  return null;
}

export function Field(props: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  type?: string;
  required?: boolean;
  name?: string;
}): ReactNode {
  return (
    <label className="field">
      <span>{props.label}</span>
      <input
        name={props.name}
        type={props.type ?? "text"}
        value={props.value}
        required={props.required}
        onChange={(e) => props.onChange(e.target.value)}
      />
    </label>
  );
}

export function StateBadge({ state }: { state: string }): ReactNode {
  return <span className={"badge state-" + state.toLowerCase()}>{state}</span>;
}

export function when(ts: number | null | undefined): string {
  return ts ? new Date(ts * 1000).toLocaleString() : "—";
}

/** Run a write, remember its error (shown next to the form) and clear it on success. */
export function useAction(): [unknown, boolean, (run: () => Promise<unknown>) => Promise<boolean>] {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const act = useCallback(async (run: () => Promise<unknown>) => {
    setBusy(true);
    try {
      await run();
      setError(null);
      return true;
    } catch (err) {
      setError(err);
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  return [error, busy, act];
}
