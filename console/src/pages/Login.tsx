/** The login form: name, password and (for privileged roles) the TOTP code. */
import { useState, type FormEvent, type ReactNode } from "react";
import { api, setCsrf, type Me } from "../api";
import { ErrorBox, Field, useAction } from "../components/common";
import { useT } from "../i18n";

export function Login({ onLogin }: { onLogin: (me: Me) => void }): ReactNode {
  const t = useT();
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [otp, setOtp] = useState("");
  const [error, busy, act] = useAction();
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    void act(async () => {
      const me = await api<Me>("/auth/login", {
        method: "POST",
        body: { name, password, otp: otp || null, kind: "browser" },
      });
      setCsrf(me.csrf ?? null);
      onLogin(me);
    });
  };
  return (
    <form className="card login" onSubmit={submit} aria-label={t("login.title")}>
      <h1>{t("login.title")}</h1>
      <Field name="name" label={t("login.name")} value={name} onChange={setName} required />
      <Field name="password" label={t("login.password")} value={password} onChange={setPassword} type="password" required />
      <Field name="otp" label={t("login.otp")} value={otp} onChange={setOtp} />
      <ErrorBox error={error} />
      <button type="submit" disabled={busy}>
        {t("login.submit")}
      </button>
    </form>
  );
}
