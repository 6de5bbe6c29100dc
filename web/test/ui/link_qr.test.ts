import { describe, expect, it } from "vitest";
import { utf8encode } from "../../src/protocol/codec";
import { qrModules } from "../../src/ui/qr";
import { CRYPTO } from "../vectors";

describe("the QR code of a link URI (ui/qr.ts)", () => {
  it("is a square of 17 + 4 x version modules with the three finder patterns", () => {
    const uri = `${CRYPTO.provisioning![0]!.uri}&name=e2e+browser`;
    const m = qrModules(utf8encode(uri));
    const n = m.length;
    expect(m.every((row) => row.length === n)).toBe(true);
    expect((n - 17) % 4).toBe(0);
    expect(n).toBeLessThanOrEqual(17 + 4 * 10); // a phone camera reads it at a glance
    // A finder pattern: a dark 7x7 ring, a light ring, a dark 3x3 core.
    const finder = (r0: number, c0: number) => {
      for (let r = 0; r < 7; r++)
        for (let c = 0; c < 7; c++) {
          const ring = r === 0 || r === 6 || c === 0 || c === 6;
          const core = r >= 2 && r <= 4 && c >= 2 && c <= 4;
          expect(m[r0 + r]![c0 + c], `${r0 + r},${c0 + c}`).toBe(ring || core);
        }
    };
    finder(0, 0);
    finder(0, n - 7);
    finder(n - 7, 0);
    expect(qrModules(utf8encode(uri))).toEqual(m); // deterministic
    expect(qrModules(utf8encode(`${uri}x`))).not.toEqual(m);
  });
});
