import { describe, expect, it } from "vitest";
import { MAX_FRAME_CHARS, backoff, decodeFrame } from "../../src/net/socket";

describe("socket helpers", () => {
  it("backs off with full jitter inside [base/2, min(cap, base * 2^n)]", () => {
    for (let attempt = 0; attempt < 30; attempt++) {
      const delay = backoff(attempt);
      expect(delay).toBeGreaterThanOrEqual(0.125);
      expect(delay).toBeLessThanOrEqual(Math.min(8, 0.25 * 2 ** attempt));
    }
  });

  it("decodes only JSON objects of a bounded size", () => {
    expect(decodeFrame('{"type":"ready"}')).toEqual({ type: "ready" });
    expect(decodeFrame("[1]")).toBeNull();
    expect(decodeFrame("not json")).toBeNull();
    expect(decodeFrame(new ArrayBuffer(4))).toBeNull();
    expect(decodeFrame(`{"a":"${"x".repeat(MAX_FRAME_CHARS)}"}`)).toBeNull();
  });
});
