import { describe, expect, it } from "vitest";
import { decodeImage } from "../../src/ui/qr_decode";
import { cameraProblem } from "../../src/ui/qr_scan";
import { qrModules } from "../../src/ui/qr";

const SCALE = 5;
const QUIET = 4;

/** A grey camera-like frame, wider than tall, with the code in it at (left, top). */
function frame(modules: boolean[][], width = 480, height = 360, left = 90, top = 40) {
  const data = new Uint8ClampedArray(width * height * 4).fill(235); // a light wall
  const side = (modules.length + 2 * QUIET) * SCALE;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const r = Math.floor(y / SCALE) - QUIET;
      const c = Math.floor(x / SCALE) - QUIET;
      const dark = modules[r]?.[c] ?? false;
      const at = ((top + y) * width + left + x) * 4;
      data.fill(dark ? 20 : 250, at, at + 3);
    }
  }
  return { data, width, height };
}

describe("the jsQR frame reader (ui/qr_decode.ts)", () => {
  it("reads a porch://link code off a frame: its text and its exact bytes", () => {
    const uri =
      "porch://link?uuid=3f2a9c1e-5d7b-4e8f-9a0b-1c2d3e4f5a6b&pub_key=AbC-_09&name=t%C3%BC";
    const bytes = new TextEncoder().encode(uri);
    const { data, width, height } = frame(qrModules(bytes));
    const found = decodeImage(data, width, height);
    expect(found?.text).toBe(uri);
    expect(found?.bytes).toEqual(bytes);
  });

  it("finds nothing on a frame without a code", () => {
    const { data, width, height } = frame([]);
    expect(decodeImage(data, width, height)).toBeNull();
  });

  it("does not read a code drawn light on dark (Porch draws every code dark on light)", () => {
    const { data, width, height } = frame(qrModules(new TextEncoder().encode("porch://link?x")));
    for (let i = 0; i < data.length; i += 4) data.fill(255 - data[i]!, i, i + 3);
    expect(decodeImage(data, width, height)).toBeNull();
  });
});

describe("camera refusals as sentences (ui/qr_scan.ts)", () => {
  const instead = "paste the link address instead";
  it.each([
    ["NotAllowedError", "The camera was not allowed; allow it for this site"],
    ["NotFoundError", "No camera was found; paste the link address instead."],
    ["OverconstrainedError", "No camera was found;"],
    ["NotReadableError", "another app may be using it"],
    ["TypeError", "The camera could not be opened; paste the link address instead."],
  ])("%s", (name, text) => {
    const sentence = cameraProblem(new DOMException("from the browser", name), instead);
    expect(sentence).toContain(text);
    expect(sentence).toMatch(/\.$/);
    expect(sentence).not.toContain("from the browser"); // the browser's own words stay out
  });

  it("a thrown non-error still gets a sentence", () => {
    expect(cameraProblem("odd", instead)).toBe(
      "The camera could not be opened; paste the link address instead.",
    );
  });
});
