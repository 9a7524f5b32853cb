import type { ComponentType } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Icon } from "./components/icons";
import { LiveBadge } from "./components/LiveBadge";
import { TimeRangePicker } from "./components/TimeRangePicker";
import { linkClick, path } from "./lib/router";
import { theme, toggleTheme } from "./lib/theme";
import { match, PAGES, type PageDef, type PageProps } from "./pages/registry";

const loaded = new Map<string, ComponentType<PageProps>>();

function PageView({ page, rest }: { page: PageDef; rest: string }) {
  const [component, setComponent] = useState<ComponentType<PageProps> | null>(() => loaded.get(page.path) ?? null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    const known = loaded.get(page.path);
    setComponent(() => known ?? null);
    setFailed(false);
    if (known) return;
    let cancelled = false;
    page
      .load()
      .then((module) => {
        loaded.set(page.path, module.default);
        if (!cancelled) setComponent(() => module.default);
      })
      .catch(() => !cancelled && setFailed(true));
    return () => {
      cancelled = true;
    };
  }, [page]);
  if (failed) return <div class="empty">This page could not be loaded. Reload to try again.</div>;
  if (!component) return <div class="empty loading">Loading…</div>;
  const Page = component;
  return <Page rest={rest} />;
}

function NotFound() {
  return (
    <div class="empty">
      No page here. <a href="/" onClick={linkClick}>Back to the overview</a>.
    </div>
  );
}

export function App() {
  const current = path.value;
  const found = match(current);
  const page = found?.page;
  useEffect(() => {
    document.title = page ? `${page.title} · Tidewatch` : "Tidewatch";
  }, [page]);

  return (
    <div class="shell">
      <nav class="sidebar" aria-label="Pages">
        <a class="brand" href="/" onClick={linkClick}>
          <span class="logo" aria-hidden="true">≈</span>
          <span>Tidewatch</span>
        </a>
        <ul>
          {PAGES.map((p) => (
            <li>
              <a href={p.path} onClick={linkClick} class={p === page ? "active" : ""} aria-current={p === page ? "page" : undefined} data-testid={`nav-${p.path === "/" ? "overview" : p.path.slice(1)}`}>
                <Icon name={p.icon} />
                <span>{p.title.replace(" Intelligence", "").replace(" Radar", "")}</span>
              </a>
            </li>
          ))}
        </ul>
        <button type="button" class="theme-toggle" onClick={toggleTheme} data-testid="theme-toggle" title="Switch between dark and light">
          <Icon name={theme.value === "dark" ? "sun" : "moon"} />
          <span>{theme.value === "dark" ? "Light theme" : "Dark theme"}</span>
        </button>
      </nav>
      <main class="main">
        <header class="page-header">
          <div>
            <h1>{page?.title ?? "Not found"}</h1>
            <p class="subtitle">{page?.subtitle ?? ""}</p>
          </div>
          <div class="header-tools">
            <TimeRangePicker />
            <LiveBadge />
          </div>
        </header>
        <div class="page" data-page={page?.path ?? "none"}>{found ? <PageView page={found.page} rest={found.rest} /> : <NotFound />}</div>
      </main>
    </div>
  );
}
