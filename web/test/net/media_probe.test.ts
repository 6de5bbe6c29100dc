import { describe, expect, it } from "vitest";
import { imageSize } from "../../src/net/media_probe";

const bytes = (...parts: Array<number[] | string>) =>
  new Uint8Array(
    parts.flatMap((p) => (typeof p === "string" ? [...p].map((c) => c.charCodeAt(0)) : p)),
  );

describe("imageSize, from the header alone", () => {
  it("reads PNG, JPEG, GIF and WebP sizes", () => {
    const png = bytes(
      [0x89],
      "PNG\r\n\x1a\n",
      [0, 0, 0, 13],
      "IHDR",
      [0, 0, 0x30, 0x39, 0, 1, 0, 0],
    );
    expect(imageSize(png)).toEqual({ width: 12345, height: 65536 });
    // SOI, an APP1 segment to skip, then SOF0: precision, height 480, width 640.
    const jpeg = bytes([
      0xff, 0xd8, 0xff, 0xe1, 0, 4, 1, 2, 0xff, 0xc0, 0, 17, 8, 1, 0xe0, 2, 0x80, 3,
    ]);
    expect(imageSize(jpeg)).toEqual({ width: 640, height: 480 });
    expect(imageSize(bytes("GIF89a", [0x10, 0x27, 0x20, 0x4e]))).toEqual({
      width: 10000,
      height: 20000,
    });
    const vp8x = bytes(
      "RIFF",
      [0, 0, 0, 0],
      "WEBPVP8X",
      [10, 0, 0, 0, 0, 0, 0, 0],
      [0x3f, 0x1f, 0],
      [0xff, 0x0f, 0],
    );
    expect(imageSize(vp8x)).toEqual({ width: 8000, height: 4096 });
  });

  it("says null when it cannot tell (the file is then sent as it is, never drawn)", () => {
    expect(imageSize(bytes("hello world, not an image"))).toBeNull();
    expect(imageSize(bytes([0xff, 0xd8, 0xff, 0xda, 0, 2, 0, 0, 0, 0, 0, 0]))).toBeNull();
    expect(imageSize(bytes([0x89], "PNG"))).toBeNull();
  });
});
