import { describe, expect, it } from "vitest";
import {
  SafetyNumberError,
  accountStableId,
  decodePayload,
  fingerprintHash,
  masterIdentityKey,
  numericFingerprint,
  safetyNumber,
} from "../../src/crypto/safety";
import { hexdecode, hexencode, utf8encode } from "../../src/protocol/codec";
import { CRYPTO } from "../vectors";

describe("crypto.json vectors (SHA-512 on WebCrypto)", () => {
  it.each(CRYPTO.safety_number!)("safety_number with $remote_master_public", async (v) => {
    const localHash = await fingerprintHash(
      accountStableId(v.local_account_id),
      masterIdentityKey(v.local_master_public),
    );
    expect(hexencode(localHash)).toBe(v.local_hash_hex);
    const ours = await safetyNumber(
      v.local_account_id,
      v.local_master_public,
      v.remote_account_id,
      v.remote_master_public,
    );
    const theirs = await safetyNumber(
      v.remote_account_id,
      v.remote_master_public,
      v.local_account_id,
      v.local_master_public,
    );
    expect(ours.digits).toBe(v.digits);
    expect(theirs.digits).toBe(v.digits);
    expect(ours.display()).toBe(v.display);
    expect(hexencode(ours.qrPayload())).toBe(v.local_qr_hex);
    expect(hexencode(theirs.qrPayload())).toBe(v.remote_qr_hex);
    expect(ours.compare(hexdecode(v.remote_qr_hex))).toBe("match");
    expect(theirs.compare(hexdecode(v.local_qr_hex))).toBe("match");
    // Scanning one's own code is a mismatch, not a match.
    expect(ours.compare(hexdecode(v.local_qr_hex))).toBe("mismatch");
  });

  it.each(CRYPTO.safety_number_libsignal!)("libsignal $source", async (v) => {
    const local = [utf8encode(v.local_id), hexdecode(v.local_key_hex)] as const;
    const remote = [utf8encode(v.remote_id), hexdecode(v.remote_key_hex)] as const;
    const ours = await numericFingerprint(...local, ...remote, v.version, v.iterations);
    const theirs = await numericFingerprint(...remote, ...local, v.version, v.iterations);
    expect(ours.digits).toBe(v.digits);
    expect(theirs.digits).toBe(v.digits);
    expect(hexencode(ours.qrPayload())).toBe(v.local_qr_hex);
    expect(hexencode(theirs.qrPayload())).toBe(v.remote_qr_hex);
    expect(ours.compare(theirs.qrPayload())).toBe("match");
  });
});

describe("scanned payloads", () => {
  const v = CRYPTO.safety_number![0]!;

  it("tells another version apart from a malformed payload", async () => {
    const ours = await safetyNumber(
      v.local_account_id,
      v.local_master_public,
      v.remote_account_id,
      v.remote_master_public,
    );
    const other = hexdecode(v.remote_qr_hex);
    other[1] = 1;
    expect(ours.compare(other)).toBe("different_version");
    expect(() => decodePayload(new Uint8Array(0))).toThrow(SafetyNumberError);
    expect(() => decodePayload(Uint8Array.of(0x42))).toThrow(/not a safety number/);
    expect(() => decodePayload(hexdecode(v.remote_qr_hex).subarray(0, 73))).toThrow(
      /74 canonical bytes/,
    );
    expect(() => decodePayload(Uint8Array.of(0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))).toThrow(
      /version field/,
    );
  });

  it("refuses ids that are not canonical UUIDs and out-of-range iterations", async () => {
    expect(() => accountStableId(v.local_account_id.toUpperCase())).toThrow(/lowercase UUID/);
    expect(() => masterIdentityKey("AAAA")).toThrow(/32 bytes/);
    await expect(fingerprintHash(Uint8Array.of(1), Uint8Array.of(1), 1)).rejects.toThrow(
      /iterations/,
    );
  });
});
