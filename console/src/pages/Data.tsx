/** Datasets of this node: register, see columns and rows, publish, open the quality report. */
import { useState, type FormEvent, type ReactNode } from "react";
import { api, hasRole, type Dataset, type Me, type Page } from "../api";
import { ErrorBox, Field, Loading, useAction, useLoad } from "../components/common";
import { useT } from "../i18n";

function RegisterForm({ onDone }: { onDone: () => void }): ReactNode {
  const t = useT();
  const [name, setName] = useState("");
  const [uri, setUri] = useState("");
  const [schema, setSchema] = useState("");
  const [key, setKey] = useState("");
  const [description, setDescription] = useState("");
  const [error, busy, act] = useAction();
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    void act(async () => {
      await api("/datasets", {
        method: "POST",
        body: { name, uri, schema_path: schema || null, key: key || null, description: description || null },
      });
      setName("");
      setUri("");
      onDone();
    });
  };
  return (
    <form className="card" onSubmit={submit} aria-label={t("data.register")}>
      <h2>{t("data.register")}</h2>
      <Field name="name" label={t("data.name")} value={name} onChange={setName} required />
      <Field name="uri" label={t("data.uri")} value={uri} onChange={setUri} required />
      <Field name="schema" label={t("data.schema")} value={schema} onChange={setSchema} />
      <Field name="key" label={t("data.key")} value={key} onChange={setKey} />
      <Field name="description" label={t("data.description")} value={description} onChange={setDescription} />
      <ErrorBox error={error} />
      <button type="submit" disabled={busy}>
        {t("data.register")}
      </button>
    </form>
  );
}

export function Data({ me }: { me: Me }): ReactNode {
  const t = useT();
  const list = useLoad(() => api<Page<Dataset>>("/datasets?limit=200"), []);
  const [error, , act] = useAction();
  const canWrite = hasRole(me, "analyst", "admin");
  return (
    <section>
      <h1>{t("data.title")}</h1>
      {canWrite && <RegisterForm onDone={list.reload} />}
      <div className="card">
        <Loading loaded={list} />
        <ErrorBox error={error} />
        {list.data?.items.length === 0 && <p className="muted">{t("empty")}</p>}
        {list.data && list.data.items.length > 0 && (
          <table className="datasets">
            <thead>
              <tr>
                <th>{t("data.name")}</th>
                <th>{t("data.columns")}</th>
                <th>{t("data.rows")}</th>
                <th>{t("data.published")}</th>
                <th>{t("data.quality")}</th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((d) => (
                <tr key={d.name} data-dataset={d.name}>
                  <td>
                    <strong>{d.name}</strong>
                    <div className="muted">{d.uri}</div>
                  </td>
                  <td>{d.columns.map((c) => `${c.name}: ${c.type}`).join(", ")}</td>
                  <td>{d.row_count ?? "—"}</td>
                  <td>
                    {d.published ? "✓" : canWrite ? (
                      <button onClick={() => void act(() => api(`/datasets/${d.name}/publish`, { method: "POST" }).then(list.reload))}>
                        {t("data.publish")}
                      </button>
                    ) : "—"}
                  </td>
                  <td>
                    {d.quality?.html ? (
                      <a href={`/api/v1/datasets/${encodeURIComponent(d.name)}/quality.html`} target="_blank" rel="noreferrer">
                        {t("data.quality")} ({d.quality.ok ? "OK" : `${d.quality.errors ?? 0} ✗`})
                      </a>
                    ) : "—"}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
