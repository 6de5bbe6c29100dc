import jsQR from "jsqr";
import { describe, expect, it } from "vitest";
import { qrModules } from "../../src/ui/qr";
import { hexdecode } from "../../src/protocol/codec";
import { CRYPTO } from "../vectors";

const SCALE = 4;
const QUIET = 4;

/** The modules as an RGBA image with a light quiet zone, as a camera would see the code. */
function image(modules: boolean[][]): { data: Uint8ClampedArray; size: number } {
  const size = (modules.length + 2 * QUIET) * SCALE;
  const data = new Uint8ClampedArray(size * size * 4).fill(255);
  modules.forEach((row, r) =>
    row.forEach((dark, c) => {
      if (!dark) return;
      for (let y = 0; y < SCALE; y++) {
        for (let x = 0; x < SCALE; x++) {
          const at = (((r + QUIET) * SCALE + y) * size + (c + QUIET) * SCALE + x) * 4;
          data.fill(0, at, at + 3);
        }
      }
    }),
  );
  return { data, size };
}

describe("QR codes (qrcode-generator, read back with jsQR)", () => {
  it("carry a safety number's 74 binary bytes exactly (byte mode, no text encoding)", () => {
    const payload = hexdecode(CRYPTO.safety_number![0]!.local_qr_hex);
    expect(payload.some((b) => b >= 0x80)).toBe(true); // bytes a UTF-8 step would change
    const { data, size } = image(qrModules(payload));
    const read = jsQR(data, size, size);
    expect(read).not.toBeNull();
    expect(Uint8Array.from(read!.binaryData)).toEqual(payload);
  });

  it("carry text as UTF-8", () => {
    const text = "porch://link?uuid=ü";
    const { data, size } = image(qrModules(new TextEncoder().encode(text)));
    expect(jsQR(data, size, size)?.data).toBe(text);
  });
});
