import { describe, expect, it } from "vitest";
import { match, PAGES } from "./registry";

describe("page registry", () => {
  it("has a page for every domain and matches paths with their rest", () => {
    expect(PAGES.map((p) => p.title)).toEqual(["Overview", "Market Intelligence", "Sales Radar", "Inventory", "User Behaviour", "Financial", "Supervision", "Alerts", "System"]);
    expect(match("/")?.page.title).toBe("Overview");
    expect(match("/market")).toMatchObject({ page: { path: "/market" }, rest: "" });
    expect(match("/market/BTCUSDT")).toMatchObject({ page: { path: "/market" }, rest: "BTCUSDT" });
    expect(match("/marketing")).toBeNull();
    expect(match("/nothing")).toBeNull();
  });
});
