import { describe, expect, it } from "vitest";
import { CryptoError, DecryptError } from "../../src/crypto/errors";
import { decodeGroupMessage, encodeGroupMessage } from "../../src/crypto/group_message";
import { hexdecode, hexencode } from "../../src/protocol/codec";
import { CRYPTO } from "../vectors";

describe("group message body", () => {
  it.each(CRYPTO.group_message!)("group_message vector for $group", (v) => {
    const message = { groupId: v.group, sessionId: v.session, ciphertext: hexdecode(v.megolm_hex) };
    expect(hexencode(encodeGroupMessage(message))).toBe(v.body_hex);
    expect(decodeGroupMessage(hexdecode(v.body_hex))).toEqual(message);
  });

  it("refuses malformed bodies unread", () => {
    const body = hexdecode(CRYPTO.group_message![1]!.body_hex);
    expect(() => decodeGroupMessage(body.subarray(0, 1))).toThrow(/too short/);
    expect(() => decodeGroupMessage(Uint8Array.of(2, ...body.subarray(1)))).toThrow(
      expect.objectContaining({ code: "unsupported_version" }),
    );
    expect(() => decodeGroupMessage(Uint8Array.of(1, 0, ...body.subarray(2)))).toThrow(
      DecryptError,
    );
    expect(() => decodeGroupMessage(body.subarray(0, 60))).toThrow(/no Megolm message|truncated/);
    expect(() => decodeGroupMessage(new Uint8Array(90_000))).toThrow(/exceeds/);
    const ciphertext = hexdecode(CRYPTO.group_message![1]!.megolm_hex);
    const session = CRYPTO.group_message![1]!.session;
    expect(() => encodeGroupMessage({ groupId: "a\0b", sessionId: session, ciphertext })).toThrow(
      CryptoError,
    );
    expect(() => encodeGroupMessage({ groupId: "g", sessionId: "AAAA", ciphertext })).toThrow(
      /32 bytes/,
    );
  });
});
