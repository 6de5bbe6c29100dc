import { describe, expect, it } from "vitest";
import { SignatureError } from "../../src/crypto/errors";
import { groupKeyPayload } from "../../src/crypto/megolm";
import {
  type ListedDevice,
  MasterKey,
  PayloadError,
  deviceBindingPayload,
  deviceListPayload,
  oneTimeKeyPayload,
  parseDeviceList,
  verifyDeviceBinding,
  verifyDeviceList,
  verifyEd25519,
  verifyOneTimeKey,
} from "../../src/crypto/signing";
import { hexdecode, hexencode } from "../../src/protocol/codec";
import { CRYPTO, type Vector } from "../vectors";

const seed = (hex: string) => MasterKey.fromPrivateBytes(hexdecode(hex));

describe("crypto.json vectors (Ed25519 on WebCrypto)", () => {
  it.each(CRYPTO.device_binding!)("device_binding $account_id/$device_id", async (v) => {
    const master = await seed(v.master_seed_hex);
    expect(master.publicB64).toBe(v.master_public);
    const fields = [v.account_id, v.device_id, v.registration_id, v.curve25519, v.ed25519] as const;
    expect(hexencode(deviceBindingPayload(...fields))).toBe(v.payload_hex);
    expect(await master.signDevice(...fields)).toBe(v.signature);
    await verifyDeviceBinding(v.master_public, ...fields, v.signature);
    await expect(
      verifyDeviceBinding(
        v.master_public,
        v.account_id,
        v.device_id + 1,
        v.registration_id,
        v.curve25519,
        v.ed25519,
        v.signature,
      ),
    ).rejects.toThrow(SignatureError);
  });

  it.each(CRYPTO.one_time_key!)("one_time_key $key_id", async (v) => {
    const signer = await seed(v.signer_seed_hex);
    expect(signer.publicB64).toBe(v.signer_ed25519);
    const payload = oneTimeKeyPayload(v.key_id, v.curve25519, v.fallback);
    expect(hexencode(payload)).toBe(v.payload_hex);
    expect(await signer.sign(payload)).toBe(v.signature);
    await verifyEd25519(v.signer_ed25519, payload, v.signature);
    await verifyOneTimeKey(v.signer_ed25519, v.key_id, v.curve25519, v.fallback, v.signature);
    // The fallback flag is signed: the same key presented the other way does not verify.
    await expect(
      verifyOneTimeKey(v.signer_ed25519, v.key_id, v.curve25519, !v.fallback, v.signature),
    ).rejects.toThrow(/does not verify/);
  });

  it.each(CRYPTO.device_list!)("device_list version $version", async (v: Vector) => {
    const master = await seed(v.master_seed_hex);
    const version = BigInt(v.version);
    const devices: ListedDevice[] = v.devices.map((d: Vector) => ({
      deviceId: d.device_id,
      registrationId: d.registration_id,
      ed25519: d.ed25519,
    }));
    const payload = deviceListPayload(v.account_id, version, devices);
    expect(hexencode(payload)).toBe(v.payload_hex);
    expect(await master.signDeviceList(v.account_id, version, devices)).toBe(v.signature);
    const parsed = await verifyDeviceList(v.master_public, payload, v.signature);
    expect(parsed.accountId).toBe(v.account_id);
    expect(parsed.version).toBe(version);
    expect(parsed.devices).toEqual([...devices].sort((a, b) => a.deviceId - b.deviceId));
  });

  it.each(CRYPTO.group_key_signature!)("group_key_signature $group", async (v) => {
    const device = await seed(v.device_seed_hex);
    expect(device.publicB64).toBe(v.device_ed25519);
    const payload = groupKeyPayload(v.group, v.session);
    expect(hexencode(payload)).toBe(v.payload_hex);
    expect(await device.sign(payload)).toBe(v.signature);
  });
});

describe("malformed input", () => {
  const v = CRYPTO.device_list![1]!;

  it("refuses a device list that is not canonical or is truncated", () => {
    const payload = hexdecode(v.payload_hex);
    expect(() => parseDeviceList(payload.subarray(0, payload.length - 1))).toThrow(/length/);
    const swapped = payload.slice();
    // Swap the two 40-byte entries: same devices, not sorted by id.
    const tail = payload.length - 80;
    swapped.set(payload.subarray(tail + 40), tail);
    swapped.set(payload.subarray(tail, tail + 40), tail + 40);
    expect(() => parseDeviceList(swapped)).toThrow(/canonical/);
  });

  it("refuses repeated devices, ids out of range and bad keys", () => {
    const d = { deviceId: 1, registrationId: 1, ed25519: v.devices[0].ed25519 };
    expect(() => deviceListPayload(v.account_id, 1n, [d, d])).toThrow(/twice/);
    expect(() => deviceListPayload(v.account_id, 0n, [d])).toThrow(PayloadError);
    expect(() => deviceListPayload(v.account_id, 2n ** 64n, [d])).toThrow(PayloadError);
    expect(() => deviceListPayload(v.account_id, 1n, [{ ...d, deviceId: 2 ** 31 }])).toThrow(
      /1..2\*\*31-1/,
    );
    expect(() => deviceBindingPayload("a\0b", 1, 1, d.ed25519, d.ed25519)).toThrow(/NUL/);
    expect(() => deviceBindingPayload("a", 2 ** 32, 1, d.ed25519, d.ed25519)).toThrow(/2\*\*32-1/);
    expect(() => deviceBindingPayload("a", 1, 1, "AAAA", d.ed25519)).toThrow(/32 bytes/);
  });

  it("maps a malformed key or signature to SignatureError", async () => {
    await expect(verifyEd25519("AAAA", new Uint8Array(1), "AAAA")).rejects.toThrow(SignatureError);
    await expect(verifyEd25519(v.master_public, new Uint8Array(1), "AAAA")).rejects.toThrow(
      /64 bytes/,
    );
  });

  it("never shows the private key", async () => {
    const key = await MasterKey.generate();
    expect(String(key)).toBe(`MasterKey(public=${key.publicB64})`);
    const sig = await key.sign(Uint8Array.of(1, 2, 3));
    await verifyEd25519(key.publicB64, Uint8Array.of(1, 2, 3), sig);
  });
});
