/**
 * Provisioning a linked device: the cipher, the provision message and the porch://link URI
 * (mirrors src/porch/crypto/provisioning.py and provisioning_uri.py; docs/protocol.md
 * section 7, "Provisioning (linking a device)"). The new device (this browser) makes an ephemeral X25519 key pair and
 * shows its public key in the URI; the primary encrypts a ProvisionMessage to it: X25519,
 * HKDF-SHA256 (zero salt, info "porch/provision/v1" || pub_new || pub_eph) to an AES-256-CBC
 * key and an HMAC-SHA256 key, encrypt-then-MAC over the whole envelope. Every primitive is
 * WebCrypto's (X25519 is in Chromium and Node 20). Sans-IO: bytes and strings in, values out.
 */

import {
  ab,
  b64decode,
  b64encode,
  b64urldecode,
  b64urlencode,
  concatBytes,
  utf8decode,
  utf8encode,
} from "../protocol/codec";
import { DecryptError, ProvisioningError, UNSUPPORTED_VERSION } from "./errors";
import { hkdfSha256 } from "./hkdf";

export const ENVELOPE_VERSION = 1;
export const MESSAGE_VERSION = 1;
export const URI_VERSION = 1;
export const KDF_INFO = utf8encode("porch/provision/v1");
export const KEY_LEN = 32;
export const IV_LEN = 16;
export const MAC_LEN = 32;
const AES_BLOCK = 16;
export const PAD_BLOCK = 512; // every v1 message pads to one bucket: its length says nothing
export const MAX_PADDED_LEN = 2 * PAD_BLOCK;
const HEADER_LEN = 1 + KEY_LEN + IV_LEN; // version, ephemeral key, IV
export const MIN_ENVELOPE_LEN = HEADER_LEN + AES_BLOCK + MAC_LEN;
export const MAX_ENVELOPE_LEN = HEADER_LEN + MAX_PADDED_LEN + AES_BLOCK + MAC_LEN;
export const MAX_URI_LEN = 512;
export const MAX_URI_PARAMS = 8;
export const MAX_URI_NAME = 32;
export const MAX_DEVICE_ID = 2 ** 31 - 1;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PHONE_RE = /^\+[1-9][0-9]{1,14}$/;
const USERNAME_RE = /^[a-z][a-z0-9_]{2,31}$/;
const CODE_RE = /^[!-~]{1,128}$/;
const B64URL_KEY_RE = /^[A-Za-z0-9_-]{43}$/;
// Python's str.isprintable: no control, format, surrogate, private or unassigned code point,
// and no separator but the ASCII space.
const UNPRINTABLE = /[\p{C}\p{Zl}\p{Zp}]|(?! )\p{Zs}/gu;
// RFC 8410 PKCS#8 wrapping of a raw X25519 private key: WebCrypto imports private keys only so.
const PKCS8_X25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);

/** What the primary gives a new device of the same account (provisioning.py). */
export interface ProvisionMessage {
  accountId: string;
  masterSeed: Uint8Array; // the account's 32-byte Ed25519 master key seed
  phone: string;
  username: string | null;
  provisioningCode: string; // the server's one-time code for adding the device
  primaryDeviceId: number;
}

const bad = (message: string) => new ProvisioningError(message);

function validate(m: ProvisionMessage): void {
  if (typeof m.accountId !== "string" || !UUID_RE.test(m.accountId))
    throw bad("account_id must be a lowercase UUID");
  if (!(m.masterSeed instanceof Uint8Array) || m.masterSeed.length !== KEY_LEN)
    throw bad(`master_seed must be ${KEY_LEN} bytes`);
  if (typeof m.phone !== "string" || !PHONE_RE.test(m.phone))
    throw bad("phone must be an E.164 number with a leading +");
  if (m.username !== null && (typeof m.username !== "string" || !USERNAME_RE.test(m.username)))
    throw bad("username must be null or a normalised username");
  if (typeof m.provisioningCode !== "string" || !CODE_RE.test(m.provisioningCode))
    throw bad("provisioning_code must be 1..128 printable ASCII characters");
  const d = m.primaryDeviceId;
  if (!Number.isInteger(d) || d < 1 || d > MAX_DEVICE_ID)
    throw bad(`primary_device_id must be an integer in 1..${MAX_DEVICE_ID}`);
}

/** The canonical JSON (sorted keys, compact, ASCII) of a message; ProvisioningError if bad. */
export function provisionMessageToJson(m: ProvisionMessage): Uint8Array<ArrayBuffer> {
  validate(m);
  // Keys in code point order; every value is ASCII (validated), so JSON.stringify matches
  // Python's json.dumps(ensure_ascii=True).
  const obj = {
    account_id: m.accountId,
    master_seed: b64encode(m.masterSeed),
    phone: m.phone,
    primary_device_id: m.primaryDeviceId,
    provisioning_code: m.provisioningCode,
    username: m.username,
    v: MESSAGE_VERSION,
  };
  return utf8encode(JSON.stringify(obj));
}

/** Parse and validate; unknown fields are ignored, another `v` is unsupported_version. */
export function provisionMessageFromJson(raw: Uint8Array): ProvisionMessage {
  let obj: unknown;
  try {
    obj = JSON.parse(utf8decode(raw));
  } catch {
    throw bad("provision message is not UTF-8 JSON");
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj))
    throw bad("provision message must be a JSON object");
  const o = obj as Record<string, unknown>;
  if (!Number.isInteger(o.v)) throw bad("provision message has no integer version");
  if (o.v !== MESSAGE_VERSION) {
    throw new ProvisioningError(
      `provision message version ${String(o.v)} is not supported (only ${MESSAGE_VERSION})`,
      UNSUPPORTED_VERSION,
    );
  }
  const required = ["account_id", "master_seed", "phone", "provisioning_code", "primary_device_id"];
  const missing = required.filter((k) => !(k in o));
  if (missing.length) throw bad(`provision message lacks ${missing.join(", ")}`);
  let seed = new Uint8Array(0);
  try {
    if (typeof o.master_seed === "string") seed = b64decode(o.master_seed);
  } catch {
    seed = new Uint8Array(0);
  }
  const message: ProvisionMessage = {
    accountId: o.account_id as string,
    masterSeed: seed,
    phone: o.phone as string,
    username: (o.username ?? null) as string | null,
    provisioningCode: o.provisioning_code as string,
    primaryDeviceId: o.primary_device_id as number,
  };
  validate(message); // the casts above are checked here
  return message;
}

/** ISO/IEC 7816-4 padding (0x80, then zeros) to a multiple of PAD_BLOCK. */
export function padPlaintext(data: Uint8Array): Uint8Array<ArrayBuffer> {
  const marked = data.length + 1;
  const out = new Uint8Array(marked + ((PAD_BLOCK - (marked % PAD_BLOCK)) % PAD_BLOCK));
  out.set(data);
  out[data.length] = 0x80;
  return out;
}

function unpadPlaintext(data: Uint8Array): Uint8Array {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  if (end === 0 || data[end - 1] !== 0x80) throw bad("provision message has no padding marker");
  return data.subarray(0, end - 1);
}

/** (AES key, MAC key) from the X25519 shared secret and both public keys. */
export async function deriveKeys(
  shared: Uint8Array,
  recipientPub: Uint8Array,
  ephemeralPub: Uint8Array,
): Promise<[Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>]> {
  const info = concatBytes(KDF_INFO, recipientPub, ephemeralPub);
  const okm = await hkdfSha256(shared, new Uint8Array(KEY_LEN), info, 2 * KEY_LEN);
  return [okm.slice(0, KEY_LEN), okm.slice(KEY_LEN)];
}

async function agree(privateKey: CryptoKey, publicRaw: Uint8Array): Promise<Uint8Array> {
  const subtle = globalThis.crypto.subtle;
  try {
    const pub = await subtle.importKey("raw", ab(publicRaw), { name: "X25519" }, true, []);
    const bits = await subtle.deriveBits({ name: "X25519", public: pub }, privateKey, 256);
    return new Uint8Array(bits);
  } catch {
    // WebCrypto refuses the all-zero secret of a low-order point (RFC 7748 §6.1), as
    // `cryptography` does.
    throw new DecryptError("provisioning key agreement failed");
  }
}

async function macKey(raw: Uint8Array, usage: "sign" | "verify"): Promise<CryptoKey> {
  const params = { name: "HMAC", hash: "SHA-256" };
  return globalThis.crypto.subtle.importKey("raw", ab(raw), params, false, [usage]);
}

/** An X25519 key pair: the new device's (or, in the vectors, the primary's ephemeral one). */
export class ProvisioningKeyPair {
  private constructor(
    readonly privateKey: CryptoKey,
    readonly publicBytes: Uint8Array<ArrayBuffer>,
  ) {}

  /** A fresh pair; the private key is not extractable: it lives only while linking. */
  static async generate(): Promise<ProvisioningKeyPair> {
    const pair = (await globalThis.crypto.subtle.generateKey({ name: "X25519" }, false, [
      "deriveBits",
    ])) as CryptoKeyPair;
    const raw = await globalThis.crypto.subtle.exportKey("raw", pair.publicKey);
    return new ProvisioningKeyPair(pair.privateKey, new Uint8Array(raw));
  }

  /** From 32 private bytes (the test vectors); RangeError if not 32 bytes. */
  static async fromPrivateBytes(raw: Uint8Array): Promise<ProvisioningKeyPair> {
    if (raw.length !== KEY_LEN)
      throw new RangeError(`X25519 private key must be ${KEY_LEN} bytes, got ${raw.length}`);
    const subtle = globalThis.crypto.subtle;
    const pkcs8 = concatBytes(PKCS8_X25519_PREFIX, raw);
    // Extractable once, to read the public half (WebCrypto derives it), then a copy that is not.
    const probe = await subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, true, ["deriveBits"]);
    const jwk = await subtle.exportKey("jwk", probe);
    const key = await subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, false, ["deriveBits"]);
    return new ProvisioningKeyPair(key, ab(b64urldecode(jwk.x ?? "")));
  }

  /**
   * Check and decrypt an envelope to the padded plaintext. ProvisioningError
   * (unsupported_version) for another envelope version; DecryptError (decrypt_failed) for a
   * wrong length, a wrong key or any tampering. The MAC is checked (by WebCrypto's constant-
   * time verify) before anything is decrypted.
   */
  async decryptPadded(envelope: Uint8Array): Promise<Uint8Array> {
    if (envelope.length < MIN_ENVELOPE_LEN || envelope.length > MAX_ENVELOPE_LEN) {
      throw new DecryptError(
        `provisioning envelope must be ${MIN_ENVELOPE_LEN}..${MAX_ENVELOPE_LEN} bytes`,
      );
    }
    if (envelope[0] !== ENVELOPE_VERSION) {
      throw new ProvisioningError(
        `provisioning envelope version ${envelope[0]} is not supported`,
        UNSUPPORTED_VERSION,
      );
    }
    const body = envelope.slice(0, envelope.length - MAC_LEN);
    const tag = envelope.slice(envelope.length - MAC_LEN);
    const ephemeralPub = body.slice(1, 1 + KEY_LEN);
    const iv = body.slice(1 + KEY_LEN, HEADER_LEN);
    const ciphertext = body.slice(HEADER_LEN);
    if (ciphertext.length % AES_BLOCK)
      throw new DecryptError("provisioning ciphertext is not a whole number of blocks");
    const shared = await agree(this.privateKey, ephemeralPub);
    const [aesKey, macRaw] = await deriveKeys(shared, this.publicBytes, ephemeralPub);
    const subtle = globalThis.crypto.subtle;
    const ok = await subtle.verify("HMAC", await macKey(macRaw, "verify"), tag, body);
    if (!ok) throw new DecryptError("provisioning envelope does not authenticate");
    const key = await subtle.importKey("raw", aesKey, "AES-CBC", false, ["decrypt"]);
    try {
      // WebCrypto's AES-CBC removes and checks the PKCS#7 padding.
      return new Uint8Array(await subtle.decrypt({ name: "AES-CBC", iv }, key, ciphertext));
    } catch {
      // Only a sender with the MAC key can get here; no padding oracle is exposed.
      throw new DecryptError("provisioning plaintext has bad PKCS#7 padding");
    }
  }

  /** Decrypt and parse; ProvisioningError (bad_provisioning) on a malformed message. */
  async decrypt(envelope: Uint8Array): Promise<ProvisionMessage> {
    return provisionMessageFromJson(unpadPlaintext(await this.decryptPadded(envelope)));
  }

  toString(): string {
    return `ProvisioningKeyPair(public=${b64urlencode(this.publicBytes)})`;
  }
}

/**
 * The envelope for an already padded plaintext, with the ephemeral key and IV given
 * (provisioning.py `encrypt_provision_with`): the primary's side, deterministic for the
 * vectors. RangeError on wrong lengths.
 */
export async function encryptProvisionWith(
  plaintext: Uint8Array,
  recipientPublic: Uint8Array,
  ephemeral: ProvisioningKeyPair,
  iv: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  if (recipientPublic.length !== KEY_LEN || iv.length !== IV_LEN)
    throw new RangeError(`recipient key must be ${KEY_LEN} bytes and IV ${IV_LEN} bytes`);
  if (!plaintext.length || plaintext.length > MAX_PADDED_LEN)
    throw new RangeError(`plaintext must be 1..${MAX_PADDED_LEN} bytes`);
  const shared = await agree(ephemeral.privateKey, recipientPublic);
  const [aesKey, macRaw] = await deriveKeys(shared, recipientPublic, ephemeral.publicBytes);
  const subtle = globalThis.crypto.subtle;
  const key = await subtle.importKey("raw", aesKey, "AES-CBC", false, ["encrypt"]);
  const ciphertext = await subtle.encrypt({ name: "AES-CBC", iv: ab(iv) }, key, ab(plaintext));
  const body = concatBytes(
    Uint8Array.of(ENVELOPE_VERSION),
    ephemeral.publicBytes,
    iv,
    new Uint8Array(ciphertext),
  );
  const tag = await subtle.sign("HMAC", await macKey(macRaw, "sign"), body);
  return concatBytes(body, new Uint8Array(tag));
}

/** Encrypt a message to the new device's public key from its URI, with a fresh ephemeral key
 * and IV (provisioning.py `encrypt_provision`): what the primary puts in the channel. */
export async function encryptProvision(
  message: ProvisionMessage,
  recipientPublic: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  const plaintext = padPlaintext(provisionMessageToJson(message));
  const ephemeral = await ProvisioningKeyPair.generate();
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_LEN));
  return encryptProvisionWith(plaintext, recipientPublic, ephemeral, iv);
}

// The URI ------------------------------------------------------------------------------------

export interface ProvisioningUri {
  channelId: string;
  publicKey: Uint8Array;
  name: string | null; // unauthenticated: whoever made the URI chose it
}

/** Printable characters only, trimmed, at most MAX_URI_NAME code points (as Python's). */
export function cleanName(name: string): string {
  return Array.from(name.replace(UNPRINTABLE, "").trim()).slice(0, MAX_URI_NAME).join("");
}

/** porch://link?uuid=…&pub_key=…&v=1[&name=…]; ProvisioningError on a bad id or key. */
export function buildProvisioningUri(
  channelId: string,
  publicKey: Uint8Array,
  name: string | null = null,
): string {
  if (!UUID_RE.test(channelId)) throw bad("channel id must be a lowercase UUID");
  if (publicKey.length !== KEY_LEN) throw bad(`public key must be ${KEY_LEN} bytes`);
  const params = new URLSearchParams({
    uuid: channelId,
    pub_key: b64urlencode(publicKey),
    v: String(URI_VERSION),
  });
  const cleaned = name ? cleanName(name) : "";
  if (cleaned) params.set("name", cleaned);
  return `porch://link?${params.toString()}`;
}

/** Parse and check every field (provisioning.py `parse_provisioning_uri`). */
export function parseProvisioningUri(text: string): ProvisioningUri {
  if (text.length > MAX_URI_LEN)
    throw bad(`provisioning URI is longer than ${MAX_URI_LEN} characters`);
  if (!/^[ -~]*$/.test(text)) throw bad("provisioning URI must be printable ASCII");
  const prefix = /^porch:\/\/link\/?(\?[^#]*)?$/.exec(text);
  if (!prefix) {
    throw bad(
      text.includes("#") ? "provisioning URI must not have a fragment" : "not a porch://link URI",
    );
  }
  const query = (prefix[1] ?? "?").slice(1);
  const pairs = query ? query.split("&") : [];
  if (pairs.length > MAX_URI_PARAMS) throw bad("malformed provisioning URI: too many fields");
  const params = new Map<string, string>();
  for (const pair of pairs) {
    if (!pair.includes("=")) throw bad(`malformed provisioning URI: bad query field '${pair}'`);
    let key: string;
    let value: string;
    try {
      const p = new URLSearchParams(pair);
      [key, value] = [...p.entries()][0]!;
    } catch {
      throw bad("malformed provisioning URI");
    }
    if (params.has(key)) throw bad(`parameter '${key}' is repeated`);
    params.set(key, value);
  }
  const version = params.get("v");
  if (version === undefined) throw bad("provisioning URI has no version (v)");
  if (!/^(0|[1-9][0-9]{0,8})$/.test(version))
    throw bad("provisioning URI version must be a small decimal integer without leading 0");
  if (Number(version) !== URI_VERSION) {
    throw new ProvisioningError(
      `provisioning URI version ${version} is not supported (only ${URI_VERSION}); update Porch on this device`,
      UNSUPPORTED_VERSION,
    );
  }
  const channelId = params.get("uuid");
  if (channelId === undefined || !UUID_RE.test(channelId))
    throw bad("uuid must be a lowercase UUID");
  const keyText = params.get("pub_key");
  if (keyText === undefined || !B64URL_KEY_RE.test(keyText))
    throw bad(`pub_key must be ${KEY_LEN} bytes of unpadded base64url`);
  let publicKey: Uint8Array;
  try {
    publicKey = b64urldecode(keyText);
  } catch {
    throw bad("pub_key is not base64url");
  }
  // 43 characters carry 258 bits: refuse the non-canonical spellings of the same 32 bytes.
  if (publicKey.length !== KEY_LEN || b64urlencode(publicKey) !== keyText)
    throw bad("pub_key is not canonical base64url");
  const name = params.get("name");
  if (name !== undefined && (Array.from(name).length > MAX_URI_NAME || cleanName(name) !== name))
    throw bad(`name must be at most ${MAX_URI_NAME} printable characters`);
  return { channelId, publicKey, name: name || null };
}
