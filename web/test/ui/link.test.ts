import { describe, expect, it } from "vitest";
import { countdown } from "../../src/ui/link";

describe("the link screen's countdown", () => {
  it("shows minutes and seconds left, rounded up, never below zero", () => {
    expect(countdown(600_000)).toBe("10:00");
    expect(countdown(599_001)).toBe("10:00"); // rounded up: never "0:00" while time is left
    expect(countdown(599_000)).toBe("9:59");
    expect(countdown(61_000)).toBe("1:01");
    expect(countdown(1)).toBe("0:01");
    expect(countdown(0)).toBe("0:00");
    expect(countdown(-5_000)).toBe("0:00");
  });
});
