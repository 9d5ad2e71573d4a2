/** Users and their roles (admin), and data grants to partners (security). */
import { useState, type FormEvent, type ReactNode } from "react";
import { api, hasRole, type Me, type Page } from "../api";
import { ErrorBox, Field, Loading, useAction, useLoad } from "../components/common";
import { consentList } from "./Jobs";
import { useT } from "../i18n";

const ROLES = ["admin", "security", "auditor", "analyst", "approver", "strategy_editor"];

interface User {
  name: string;
  roles: string[];
  totp: boolean;
  locked: boolean;
  disabled: boolean;
}

interface Grant {
  id: number;
  dataset: string;
  grantee: string;
  components: string[];
  uses?: number;
  revoked?: boolean;
}

function UserRow({ user, onDone }: { user: User; onDone: () => void }): ReactNode {
  const t = useT();
  const [roles, setRoles] = useState(user.roles.join(","));
  const [error, busy, act] = useAction();
  return (
    <tr>
      <td>{user.name}</td>
      <td>
        <input aria-label={`${t("users.roles")} ${user.name}`} value={roles} onChange={(e) => setRoles(e.target.value)} />
        <ErrorBox error={error} />
      </td>
      <td>{user.totp ? "TOTP" : ""} {user.locked ? "🔒" : ""}</td>
      <td>
        <button disabled={busy} onClick={() => void act(() => api(`/users/${user.name}/roles`, { method: "PUT", body: { roles: consentList(roles) } }).then(onDone))}>
          {t("users.saveRoles")}
        </button>
      </td>
    </tr>
  );
}

function UsersCard(): ReactNode {
  const t = useT();
  const list = useLoad(() => api<Page<User>>("/users?limit=200"), []);
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [roles, setRoles] = useState("analyst");
  const [totp, setTotp] = useState<string | null>(null);
  const [error, busy, act] = useAction();
  const create = (e: FormEvent): void => {
    e.preventDefault();
    void act(async () => {
      const r = await api<{ totp_uri: string | null }>("/users", { method: "POST", body: { name, password, roles: consentList(roles) } });
      setTotp(r.totp_uri);
      list.reload();
    });
  };
  return (
    <div className="card">
      <h2>{t("users.title")}</h2>
      <Loading loaded={list} />
      <table>
        <tbody>
          {list.data?.items.map((u) => <UserRow key={u.name} user={u} onDone={list.reload} />)}
        </tbody>
      </table>
      <form onSubmit={create} aria-label={t("users.create")}>
        <Field name="name" label={t("login.name")} value={name} onChange={setName} required />
        <Field name="password" label={t("login.password")} value={password} onChange={setPassword} type="password" required />
        <Field name="roles" label={`${t("users.roles")} (${ROLES.join(", ")})`} value={roles} onChange={setRoles} required />
        <ErrorBox error={error} />
        {totp && <p>{t("users.totp")}: <code>{totp}</code></p>}
        <button type="submit" disabled={busy}>{t("users.create")}</button>
      </form>
    </div>
  );
}

function GrantsCard({ canWrite }: { canWrite: boolean }): ReactNode {
  const t = useT();
  const list = useLoad(() => api<Page<Grant>>("/grants?limit=200"), []);
  const [dataset, setDataset] = useState("");
  const [grantee, setGrantee] = useState("");
  const [components, setComponents] = useState("");
  const [error, busy, act] = useAction();
  const create = (e: FormEvent): void => {
    e.preventDefault();
    void act(() => api("/grants", { method: "POST", body: { dataset, grantee, components: consentList(components) } }).then(list.reload));
  };
  return (
    <div className="card">
      <h2>{t("grants.title")}</h2>
      <Loading loaded={list} />
      <ErrorBox error={error} />
      <table>
        <thead>
          <tr>
            <th>#</th>
            <th>{t("grants.dataset")}</th>
            <th>{t("grants.grantee")}</th>
            <th>{t("grants.components")}</th>
            <th>{t("grants.uses")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.data?.items.map((g) => (
            <tr key={g.id}>
              <td>{g.id}</td>
              <td>{g.dataset}</td>
              <td>{g.grantee}</td>
              <td>{(g.components ?? []).join(", ")}</td>
              <td>{g.uses ?? 0}</td>
              <td>
                {canWrite && !g.revoked && (
                  <button className="danger" disabled={busy} onClick={() => void act(() => api(`/grants/${g.id}/revoke`, { method: "POST" }).then(list.reload))}>
                    {t("grants.revoke")}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {canWrite && (
        <form onSubmit={create} aria-label={t("grants.create")}>
          <Field name="dataset" label={t("grants.dataset")} value={dataset} onChange={setDataset} required />
          <Field name="grantee" label={t("grants.grantee")} value={grantee} onChange={setGrantee} required />
          <Field name="components" label={t("grants.components")} value={components} onChange={setComponents} />
          <button type="submit" disabled={busy}>{t("grants.create")}</button>
        </form>
      )}
    </div>
  );
}

export function Users({ me }: { me: Me }): ReactNode {
  const t = useT();
  return (
    <section>
      <h1>{t("nav.users")}</h1>
      {hasRole(me, "admin") && <UsersCard />}
      <GrantsCard canWrite={hasRole(me, "security")} />
    </section>
  );
}
