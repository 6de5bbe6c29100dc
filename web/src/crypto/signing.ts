/**
 * Ed25519 signatures binding devices to accounts, one-time keys to devices, and an account's
 * device list to its master key (docs/protocol.md, section 7 "Keys and signatures"); mirrors
 * src/porch/crypto/signing.py. Ed25519 (RFC 8032) is WebCrypto's; the payload layouts are
 * ours: a NUL-terminated domain-separation label, NUL-terminated strings, big-endian integers.
 */

import { ab, b64decode, b64encode, concatBytes, utf8decode, utf8encode } from "../protocol/codec";
import { SignatureError } from "./errors";

export const DEVICE_LABEL = utf8encode("porch/device/v1\0");
export const OTK_LABEL = utf8encode("porch/otk/v1\0");
export const DEVICE_LIST_LABEL = utf8encode("porch/device-list/v1\0");
export const MAX_LISTED_DEVICES = 64;
export const KEY_LEN = 32;
export const SIGNATURE_LEN = 64;
const U32_MAX = 2 ** 32 - 1;
const U64_MAX = 2n ** 64n - 1n;
const ENTRY_LEN = 4 + 4 + KEY_LEN;
// RFC 8410 PKCS#8 wrapping of a 32-byte Ed25519 seed: WebCrypto imports private keys only so.
const PKCS8_ED25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/** A malformed payload argument (Python's ValueError). */
export class PayloadError extends Error {
  override name = "PayloadError";
}

function rawKey(name: string, keyB64: string): Uint8Array<ArrayBuffer> {
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = b64decode(keyB64);
  } catch (exc) {
    throw new PayloadError(`${name}: ${(exc as Error).message}`);
  }
  if (raw.length !== KEY_LEN)
    throw new PayloadError(`${name} must be ${KEY_LEN} bytes, got ${raw.length}`);
  return raw;
}

function u32(name: string, value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new PayloadError(`${name} must be an integer in 0..2**32-1`);
  }
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

function asciiId(accountId: string): Uint8Array {
  if (!/^[\x01-\x7f]*$/.test(accountId))
    throw new PayloadError("account_id must be ASCII without NUL");
  return utf8encode(accountId);
}

export function deviceBindingPayload(
  accountId: string,
  deviceId: number,
  registrationId: number,
  curve25519: string,
  ed25519: string,
): Uint8Array {
  return concatBytes(
    DEVICE_LABEL,
    asciiId(accountId),
    Uint8Array.of(0),
    u32("device_id", deviceId),
    u32("registration_id", registrationId),
    rawKey("curve25519", curve25519),
    rawKey("ed25519", ed25519),
  );
}

/** The fallback flag is signed so a fallback key cannot pass as a one-time key. */
export function oneTimeKeyPayload(
  keyId: string,
  curve25519: string,
  fallback: boolean,
): Uint8Array {
  if (keyId.includes("\0")) throw new PayloadError("key_id must not contain NUL");
  return concatBytes(
    OTK_LABEL,
    utf8encode(keyId),
    Uint8Array.of(0),
    rawKey("curve25519", curve25519),
    Uint8Array.of(fallback ? 1 : 0),
  );
}

export interface ListedDevice {
  deviceId: number;
  registrationId: number;
  ed25519: string;
}

export interface DeviceList {
  accountId: string;
  version: bigint; // u64: beyond a JavaScript number
  devices: readonly ListedDevice[];
}

export function deviceListPayload(
  accountId: string,
  version: bigint,
  devices: readonly ListedDevice[],
): Uint8Array {
  const id = asciiId(accountId);
  if (version < 1n || version > U64_MAX)
    throw new PayloadError("version must be an integer in 1..2**64-1");
  const ordered = [...devices].sort((a, b) => a.deviceId - b.deviceId);
  if (new Set(ordered.map((d) => d.deviceId)).size !== ordered.length) {
    throw new PayloadError("a device is listed twice");
  }
  if (ordered.length < 1 || ordered.length > MAX_LISTED_DEVICES) {
    throw new PayloadError(`a device list has 1..${MAX_LISTED_DEVICES} devices`);
  }
  const head = new Uint8Array(10);
  const view = new DataView(head.buffer);
  view.setBigUint64(0, version);
  view.setUint16(8, ordered.length);
  const entries = ordered.map((d) => {
    if (!Number.isInteger(d.deviceId) || d.deviceId < 1 || d.deviceId > 2 ** 31 - 1) {
      throw new PayloadError("device ids are 1..2**31-1");
    }
    return concatBytes(
      u32("device_id", d.deviceId),
      u32("registration_id", d.registrationId),
      rawKey("ed25519", d.ed25519),
    );
  });
  return concatBytes(DEVICE_LIST_LABEL, id, Uint8Array.of(0), head, ...entries);
}

/** The inverse of deviceListPayload; PayloadError unless the bytes are exactly canonical. */
export function parseDeviceList(payload: Uint8Array): DeviceList {
  const label = payload.subarray(0, DEVICE_LIST_LABEL.length);
  if (
    !label.every((b, i) => b === DEVICE_LIST_LABEL[i]) ||
    label.length !== DEVICE_LIST_LABEL.length
  ) {
    throw new PayloadError("not a porch/device-list/v1 payload");
  }
  const rest = payload.subarray(DEVICE_LIST_LABEL.length);
  const end = rest.indexOf(0);
  if (end < 1) throw new PayloadError("device list has no account id");
  const idBytes = rest.subarray(0, end);
  if (idBytes.some((b) => b > 0x7f)) throw new PayloadError("device list account id is not ASCII");
  const accountId = utf8decode(idBytes);
  const tail = rest.subarray(end + 1);
  if (tail.length < 10) throw new PayloadError("device list is truncated");
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  const version = view.getBigUint64(0);
  const n = view.getUint16(8);
  if (tail.length - 10 !== n * ENTRY_LEN)
    throw new PayloadError("device list length does not match its count");
  const devices: ListedDevice[] = [];
  for (let i = 0; i < n; i++) {
    const at = 10 + i * ENTRY_LEN;
    devices.push({
      deviceId: view.getUint32(at),
      registrationId: view.getUint32(at + 4),
      ed25519: b64encode(tail.subarray(at + 8, at + ENTRY_LEN)),
    });
  }
  const canonical = deviceListPayload(accountId, version, devices);
  if (canonical.length !== payload.length || !canonical.every((b, i) => b === payload[i])) {
    throw new PayloadError("device list is not in canonical order");
  }
  return { accountId, version, devices };
}

/** SignatureError on mismatch or a malformed key or signature. */
export async function verifyEd25519(
  publicKeyB64: string,
  payload: Uint8Array,
  signatureB64: string,
): Promise<void> {
  let publicKey: CryptoKey;
  let signature: Uint8Array<ArrayBuffer>;
  try {
    const raw = rawKey("public key", publicKeyB64);
    signature = b64decode(signatureB64);
    publicKey = await globalThis.crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, [
      "verify",
    ]);
  } catch (exc) {
    throw new SignatureError(`malformed key or signature: ${(exc as Error).message}`);
  }
  if (signature.length !== SIGNATURE_LEN) {
    throw new SignatureError(`signature must be ${SIGNATURE_LEN} bytes, got ${signature.length}`);
  }
  const ok = await globalThis.crypto.subtle.verify(
    { name: "Ed25519" },
    publicKey,
    ab(signature),
    ab(payload),
  );
  if (!ok) throw new SignatureError("signature does not verify");
}

export async function verifyDeviceList(
  masterPublicB64: string,
  payload: Uint8Array,
  signatureB64: string,
): Promise<DeviceList> {
  let parsed: DeviceList;
  try {
    parsed = parseDeviceList(payload);
  } catch (exc) {
    throw new SignatureError(`malformed device list: ${(exc as Error).message}`);
  }
  await verifyEd25519(masterPublicB64, payload, signatureB64);
  return parsed;
}

export async function verifyDeviceBinding(
  masterPublicB64: string,
  accountId: string,
  deviceId: number,
  registrationId: number,
  curve25519: string,
  ed25519: string,
  signatureB64: string,
): Promise<void> {
  let payload: Uint8Array;
  try {
    payload = deviceBindingPayload(accountId, deviceId, registrationId, curve25519, ed25519);
  } catch (exc) {
    throw new SignatureError(`malformed device binding: ${(exc as Error).message}`);
  }
  await verifyEd25519(masterPublicB64, payload, signatureB64);
}

export async function verifyOneTimeKey(
  deviceEd25519B64: string,
  keyId: string,
  curve25519: string,
  fallback: boolean,
  signatureB64: string,
): Promise<void> {
  let payload: Uint8Array;
  try {
    payload = oneTimeKeyPayload(keyId, curve25519, fallback);
  } catch (exc) {
    throw new SignatureError(`malformed one-time key: ${(exc as Error).message}`);
  }
  await verifyEd25519(deviceEd25519B64, payload, signatureB64);
}

/** An account's long-term Ed25519 key: a non-extractable WebCrypto key and its public half. */
export class MasterKey {
  readonly #private: CryptoKey;
  readonly publicB64: string;

  private constructor(privateKey: CryptoKey, publicB64: string) {
    this.#private = privateKey;
    this.publicB64 = publicB64;
  }

  static async generate(): Promise<MasterKey> {
    const pair = (await globalThis.crypto.subtle.generateKey({ name: "Ed25519" }, false, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    const raw = new Uint8Array(await globalThis.crypto.subtle.exportKey("raw", pair.publicKey));
    return new MasterKey(pair.privateKey, b64encode(raw));
  }

  /** From the 32-byte RFC 8032 seed (what the Python client stores). */
  static async fromPrivateBytes(seed: Uint8Array): Promise<MasterKey> {
    if (seed.length !== KEY_LEN)
      throw new PayloadError(`master key seed must be ${KEY_LEN} bytes, got ${seed.length}`);
    const pkcs8 = concatBytes(PKCS8_ED25519_PREFIX, seed);
    const subtle = globalThis.crypto.subtle;
    // Extractable once, only to read the public key (WebCrypto derives it for us), then the
    // key kept is a non-extractable copy.
    const probe = await subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
    const jwk = await subtle.exportKey("jwk", probe);
    const key = await subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
    const x = (jwk.x ?? "").replace(/-/g, "+").replace(/_/g, "/");
    return new MasterKey(key, x);
  }

  async sign(payload: Uint8Array): Promise<string> {
    const sig = await globalThis.crypto.subtle.sign(
      { name: "Ed25519" },
      this.#private,
      ab(payload),
    );
    return b64encode(new Uint8Array(sig));
  }

  signDevice(
    accountId: string,
    deviceId: number,
    registrationId: number,
    curve25519: string,
    ed25519: string,
  ): Promise<string> {
    return this.sign(
      deviceBindingPayload(accountId, deviceId, registrationId, curve25519, ed25519),
    );
  }

  signDeviceList(
    accountId: string,
    version: bigint,
    devices: readonly ListedDevice[],
  ): Promise<string> {
    return this.sign(deviceListPayload(accountId, version, devices));
  }

  toString(): string {
    return `MasterKey(public=${this.publicB64})`; // never the private key
  }
}
