// Dark and light themes: CSS variables switched by `data-theme` on <html>, remembered in
// localStorage; dark by default, as the dashboard our users know.

import { effect, signal } from "@preact/signals";

export type Theme = "dark" | "light";

function initialTheme(): Theme {
  try {
    const saved = localStorage.getItem("tidewatch.theme");
    if (saved === "dark" || saved === "light") return saved;
  } catch {
    // storage unavailable
  }
  return "dark";
}

export const theme = signal<Theme>(initialTheme());

effect(() => {
  document.documentElement.dataset.theme = theme.value;
  try {
    localStorage.setItem("tidewatch.theme", theme.value);
  } catch {
    // storage unavailable
  }
});

export function toggleTheme(): void {
  theme.value = theme.value === "dark" ? "light" : "dark";
}

/** A CSS variable's current value, for canvas drawing (charts). */
export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
