import { describe, expect, it } from "vitest";
import {
  b64decode,
  b64encode,
  b64urldecode,
  b64urlencode,
  constantTimeEqual,
  hexdecode,
  hexencode,
  utf8decode,
} from "../../src/protocol/codec";
import { CodecError } from "../../src/protocol/errors";

const bytes = (...values: number[]) => Uint8Array.from(values);

describe("base64 (docs/protocol.md, Encodings)", () => {
  it("encodes standard base64 without padding", () => {
    expect(b64encode(bytes())).toBe("");
    expect(b64encode(bytes(0xfb))).toBe("+w");
    expect(b64encode(bytes(0xfb, 0xff))).toBe("+/8");
    expect(b64encode(bytes(0xfb, 0xff, 0xbf))).toBe("+/+/");
  });

  it("matches Node's encoder on every length and byte value", () => {
    for (let n = 0; n < 70; n++) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
      const expected = Buffer.from(data).toString("base64").replace(/=+$/, "");
      expect(b64encode(data)).toBe(expected);
      expect(hexencode(b64decode(expected))).toBe(hexencode(data));
      expect(hexencode(b64decode(Buffer.from(data).toString("base64")))).toBe(hexencode(data));
    }
  });

  it("refuses what Python's decoder refuses", () => {
    for (const bad of ["A", "AAAAA", "-_8", "AA AA", "AA\n", "A=A", "é"]) {
      expect(() => b64decode(bad), bad).toThrow(CodecError);
    }
  });

  it("has a URL-safe variant for media ids", () => {
    const id = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i);
    const text = b64urlencode(id);
    expect(text).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(hexencode(b64urldecode(text))).toBe(hexencode(id));
    expect(() => b64urldecode("+/8")).toThrow(CodecError);
  });
});

describe("hex, UTF-8 and comparison", () => {
  it("round-trips hex and refuses odd or non-hex input", () => {
    expect(hexencode(hexdecode("00ff10"))).toBe("00ff10");
    expect(() => hexdecode("0")).toThrow(CodecError);
    expect(() => hexdecode("zz")).toThrow(CodecError);
  });

  it("decodes UTF-8 strictly", () => {
    expect(utf8decode(bytes(0x68, 0xc3, 0xa9))).toBe("hé");
    expect(() => utf8decode(bytes(0x80))).toThrow(CodecError);
    expect(() => utf8decode(bytes(0xed, 0xa0, 0x80))).toThrow(CodecError); // a surrogate
  });

  it("compares in constant time, lengths included", () => {
    expect(constantTimeEqual(bytes(1, 2), bytes(1, 2))).toBe(true);
    expect(constantTimeEqual(bytes(1, 2), bytes(1, 3))).toBe(false);
    expect(constantTimeEqual(bytes(1, 2), bytes(1, 2, 0))).toBe(false);
  });
});
