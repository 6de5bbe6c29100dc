import { describe, expect, it } from "vitest";
import { hkdfSha256, subkey } from "../../src/crypto/hkdf";
import { hexdecode, hexencode } from "../../src/protocol/codec";
import { CRYPTO } from "../vectors";

describe("HKDF-SHA256 on WebCrypto", () => {
  it.each(CRYPTO.subkey!)("crypto.json subkey $label (Sealer.subkey)", async (v) => {
    expect(hexencode(await subkey(hexdecode(v.key_hex), v.label))).toBe(v.subkey_hex);
  });

  it("matches RFC 5869 test case 1", async () => {
    const okm = await hkdfSha256(
      hexdecode("0b".repeat(22)),
      hexdecode("000102030405060708090a0b0c"),
      hexdecode("f0f1f2f3f4f5f6f7f8f9"),
      42,
    );
    expect(hexencode(okm)).toBe(
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    );
  });
});
