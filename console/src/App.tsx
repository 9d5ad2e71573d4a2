/** The shell: session, language switch, navigation and client-side routes. */
import { useCallback, useEffect, useState, type ReactNode } from "react";
import { api, ApiError, hasRole, setCsrf, type Me } from "./api";
import { ErrorBox } from "./components/common";
import { I18n, initialLang, translator, useT, type Key, type Lang } from "./i18n";
import { Audit } from "./pages/Audit";
import { Data } from "./pages/Data";
import { JobDetail, JobList } from "./pages/Jobs";
import { Login } from "./pages/Login";
import { Models } from "./pages/Models";
import { Monitoring } from "./pages/Monitoring";
import { Overview } from "./pages/Overview";
import { Strategies } from "./pages/Strategies";
import { Users } from "./pages/Users";

const NAV: [string, Key][] = [
  ["/", "nav.overview"],
  ["/data", "nav.data"],
  ["/jobs", "nav.jobs"],
  ["/models", "nav.models"],
  ["/strategies", "nav.strategies"],
  ["/monitoring", "nav.monitoring"],
  ["/audit", "nav.audit"],
  ["/users", "nav.users"],
];

function usePath(): [string, (path: string) => void] {
  const [path, setPath] = useState(window.location.pathname);
  useEffect(() => {
    const onPop = (): void => setPath(window.location.pathname);
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  const go = useCallback((next: string) => {
    window.history.pushState(null, "", next);
    setPath(next);
  }, []);
  return [path, go];
}

function Page({ path, me, party, go }: { path: string; me: Me; party: string; go: (p: string) => void }): ReactNode {
  const t = useT();
  if (path === "/") return <Overview me={me} go={go} />;
  if (path === "/data") return <Data me={me} />;
  if (path === "/jobs") return <JobList me={me} go={go} />;
  if (path.startsWith("/jobs/")) return <JobDetail id={decodeURIComponent(path.slice(6))} me={me} party={party} go={go} />;
  if (path === "/models") return <Models me={me} />;
  if (path === "/audit") {
    return hasRole(me, "auditor") ? <Audit /> : <ErrorBox error={new Error(`${me.user}: auditor ${t("nav.audit")}`)} />;
  }
  if (path === "/users") return <Users me={me} />;
  if (path === "/strategies") return <Strategies me={me} />;
  if (path === "/monitoring") return <Monitoring />;
  return <ErrorBox error={new Error(`404: ${path}`)} />;
}

export function App(): ReactNode {
  const [lang, setLang] = useState<Lang>(initialLang);
  const t = translator(lang);
  const [path, go] = usePath();
  const [me, setMe] = useState<Me | null>(null);
  const [party, setParty] = useState("");
  const [checked, setChecked] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("app.title");
    localStorage.setItem("meshmpc.lang", lang);
  }, [lang, t]);
  useEffect(() => {
    api<{ party: string }>("/health").then((h) => setParty(h.party), setError);
    api<Me>("/me")
      .then((m) => (setCsrf(m.csrf ?? null), setMe(m)))
      .catch((err: unknown) => {
        if (!(err instanceof ApiError && err.status === 401)) setError(err);
      })
      .finally(() => setChecked(true));
  }, []);
  const logout = (): void => {
    void api("/auth/logout", { method: "POST" }).finally(() => (setCsrf(null), setMe(null)));
  };
  return (
    <I18n.Provider value={{ lang, t }}>
      <header className="top">
        <strong>
          {t("app.title")} {party && <span className="party">· {party}</span>}
        </strong>
        {me && (
          <nav aria-label="main">
            {NAV.map(([href, key]) => (
              <a key={href} href={href} aria-current={path === href || (href !== "/" && path.startsWith(href)) ? "page" : undefined} onClick={(e) => (e.preventDefault(), go(href))}>
                {t(key)}
              </a>
            ))}
          </nav>
        )}
        <span className="spacer" />
        <button type="button" onClick={() => setLang(lang === "zh" ? "en" : "zh")}>
          {t("lang.switch")}
        </button>
        {me && (
          <>
            <span className="muted">
              {me.user} ({me.roles.join(", ")})
            </span>
            <button type="button" onClick={logout}>
              {t("logout")}
            </button>
          </>
        )}
      </header>
      <main>
        <ErrorBox error={error} />
        {!checked ? <p className="muted">{t("loading")}</p> : me ? <Page path={path} me={me} party={party} go={go} /> : <Login onLogin={setMe} />}
      </main>
    </I18n.Provider>
  );
}
