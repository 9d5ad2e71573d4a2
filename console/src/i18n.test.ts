import { describe, expect, it } from "vitest";
import { TEXTS } from "./i18n";

describe("texts", () => {
  it("has every key in both languages, none empty, and they differ", () => {
    const zh = Object.keys(TEXTS.zh).sort();
    expect(Object.keys(TEXTS.en).sort()).toEqual(zh);
    for (const key of zh) {
      const k = key as keyof typeof TEXTS.zh;
      expect(TEXTS.zh[k].length, key).toBeGreaterThan(0);
      expect(TEXTS.en[k].length, key).toBeGreaterThan(0);
    }
    expect(TEXTS.zh["nav.jobs"]).not.toBe(TEXTS.en["nav.jobs"]);
  });
});
