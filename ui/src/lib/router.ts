// A tiny history router: the path is a signal; links call `navigate`. The server answers
// every non-API path with index.html, so deep links and reloads work.

import { signal } from "@preact/signals";

export const path = signal(typeof location === "undefined" ? "/" : location.pathname);

export function navigate(to: string, replace = false): void {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  path.value = location.pathname;
  if (!replace) window.scrollTo(0, 0);
}

if (typeof window !== "undefined") {
  window.addEventListener("popstate", () => {
    path.value = location.pathname;
  });
}

/** For `onClick` of an `<a href>`: client-side navigation unless a modifier asks otherwise. */
export function linkClick(event: MouseEvent): void {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const anchor = event.currentTarget as HTMLAnchorElement;
  event.preventDefault();
  navigate(anchor.getAttribute("href") ?? "/");
}
