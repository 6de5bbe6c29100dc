import { describe, expect, it } from "vitest";
import { isWakeMessage, WAKE_MESSAGE } from "../../src/sw/wake";

describe("wake messages", () => {
  it("are recognised by their type only", () => {
    expect(isWakeMessage(WAKE_MESSAGE)).toBe(true);
    expect(isWakeMessage({ type: "other" })).toBe(false);
    expect(isWakeMessage(null)).toBe(false);
    expect(isWakeMessage("porch:wake")).toBe(false);
  });
});
