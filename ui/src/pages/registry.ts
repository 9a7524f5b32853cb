// Every page of the sidebar. Pages are loaded lazily: the first load carries only the shell.

import type { ComponentType } from "preact";

export interface PageProps {
  /** The rest of the path after the page's own, e.g. "AAPL" for /market/AAPL. */
  rest: string;
}

export interface PageDef {
  path: string;
  title: string;
  subtitle: string;
  icon: string;
  load: () => Promise<{ default: ComponentType<PageProps> }>;
}

/** A domain that has no streams in this server yet: the page says so. */
function domainPage(domain: string, title: string, subtitle: string, icon: string, prefix: string): PageDef {
  return {
    path: `/${domain}`,
    title,
    subtitle,
    icon,
    load: () => import("./NotBuilt").then((m) => ({ default: m.notBuiltPage(title, prefix) })),
  };
}

export const PAGES: PageDef[] = [
  { path: "/", title: "Overview", subtitle: "Executive overview of every live stream", icon: "overview", load: () => import("./Overview") },
  { path: "/market", title: "Market Intelligence", subtitle: "Quotes, candles and anomalies across venues", icon: "market", load: () => import("./Market") },
  domainPage("sales", "Sales Radar", "Revenue, orders and live transactions", "sales", "sales."),
  domainPage("inventory", "Inventory", "Stock levels, turnover and shortages", "inventory", "inventory."),
  domainPage("behaviour", "User Behaviour", "Sessions, funnels and live user events", "behaviour", "behaviour."),
  domainPage("financial", "Financial", "Revenue, expenses and budget against actual", "financial", "financial."),
  domainPage("supervision", "Supervision", "Equipment and process supervision", "supervision", "supervision."),
  { path: "/alerts", title: "Alerts", subtitle: "Anomalies detected in every domain", icon: "alerts", load: () => import("./Alerts") },
  { path: "/system", title: "System", subtitle: "Streams, ingest and connection health", icon: "system", load: () => import("./System") },
];

/** The page for a path and the rest of the path after it. */
export function match(path: string): { page: PageDef; rest: string } | null {
  if (path === "/" || path === "") return { page: PAGES[0]!, rest: "" };
  for (const page of PAGES) {
    if (page.path === "/") continue;
    if (path === page.path || path.startsWith(page.path + "/")) {
      return { page, rest: decodeURIComponent(path.slice(page.path.length + 1)) };
    }
  }
  return null;
}
