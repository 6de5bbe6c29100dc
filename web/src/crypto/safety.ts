/**
 * Safety numbers: Signal's numeric fingerprints over two accounts' master keys
 * (docs/protocol.md, "Safety numbers"); mirrors src/porch/crypto/safety.py, which documents
 * the algorithm (libsignal's NumericFingerprintGenerator):
 *
 *     h = SHA-512(0x0000 || key || stable_id || key); repeat iterations-1 times h = SHA-512(h || key)
 *
 * SHA-512 is WebCrypto's. Porch's stable id is the account id's 36 ASCII bytes and the key is
 * 0xED || the Ed25519 master public key.
 */

import { b64decode, concatBytes, constantTimeEqual, utf8encode } from "../protocol/codec";
import { BAD_SAFETY_NUMBER, CryptoError } from "./errors";

export const VERSION = 2;
export const ITERATIONS = 5200;
export const MIN_ITERATIONS = 2;
export const MAX_ITERATIONS = 1_000_000;
export const KEY_TYPE_ED25519 = 0xed;
export const ED25519_KEY_LEN = 32;
export const DIGITS = 60;
export const GROUP = 5;
export const SCANNABLE_LEN = 32;
export const MAX_ID_BYTES = 256;
export const MAX_KEY_BYTES = 256;
export const MAX_VERSION = 127;
export const MAX_PAYLOAD_BYTES = 1024;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TAG_VERSION = 0x08;
const TAG_LOCAL = 0x12;
const TAG_REMOTE = 0x1a;
const TAG_CONTENT = 0x0a;
const LOGICAL = Uint8Array.of(SCANNABLE_LEN + 2, TAG_CONTENT, SCANNABLE_LEN);
export const PAYLOAD_LEN = 2 + 2 * (1 + LOGICAL.length + SCANNABLE_LEN); // 74

/** A scanned safety-number payload is malformed. */
export class SafetyNumberError extends CryptoError {
  constructor(message: string) {
    super(message, BAD_SAFETY_NUMBER);
  }
}

export type Comparison = "match" | "mismatch" | "different_version";

function checkVersion(version: number): void {
  if (!Number.isInteger(version) || version < 1 || version > MAX_VERSION) {
    throw new RangeError(`version must be in 1..${MAX_VERSION}`);
  }
}

/** One account's 64-byte iterated SHA-512 fingerprint (libsignal's get_fingerprint). */
export async function fingerprintHash(
  stableId: Uint8Array,
  identityKey: Uint8Array,
  iterations: number = ITERATIONS,
): Promise<Uint8Array> {
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new RangeError(`iterations must be in ${MIN_ITERATIONS}..${MAX_ITERATIONS}`);
  }
  if (stableId.length < 1 || stableId.length > MAX_ID_BYTES) {
    throw new RangeError(`stable id must be 1..${MAX_ID_BYTES} bytes`);
  }
  if (identityKey.length < 1 || identityKey.length > MAX_KEY_BYTES) {
    throw new RangeError(`identity key must be 1..${MAX_KEY_BYTES} bytes`);
  }
  const subtle = globalThis.crypto.subtle;
  let digest = new Uint8Array(
    await subtle.digest(
      "SHA-512",
      concatBytes(Uint8Array.of(0, 0), identityKey, stableId, identityKey),
    ),
  );
  // One buffer reused for every round: h (64 bytes) || key.
  const round = new Uint8Array(64 + identityKey.length);
  round.set(identityKey, 64);
  for (let i = 1; i < iterations; i++) {
    round.set(digest, 0);
    digest = new Uint8Array(await subtle.digest("SHA-512", round));
  }
  return digest;
}

/** 30 digits from the first 30 bytes: six 5-byte big-endian chunks, each mod 100000. */
export function encodeHalf(fingerprint: Uint8Array): string {
  if (fingerprint.length < 30) throw new RangeError("fingerprint must be at least 30 bytes");
  let out = "";
  for (let i = 0; i < 30; i += 5) {
    let chunk = 0n;
    for (let j = i; j < i + 5; j++) chunk = (chunk << 8n) | BigInt(fingerprint[j]!);
    out += (chunk % 100_000n).toString().padStart(5, "0");
  }
  return out;
}

export function formatDigits(digits: string): string {
  if (!new RegExp(`^[0-9]{${DIGITS}}$`).test(digits)) {
    throw new RangeError(`a safety number is ${DIGITS} ASCII digits`);
  }
  return digits.match(/.{5}/g)!.join(" ");
}

/** The QR payload: libsignal's CombinedFingerprints protobuf, always 74 bytes. */
export function encodePayload(version: number, local: Uint8Array, remote: Uint8Array): Uint8Array {
  checkVersion(version);
  if (local.length !== SCANNABLE_LEN || remote.length !== SCANNABLE_LEN) {
    throw new RangeError(`scannable fingerprints are ${SCANNABLE_LEN} bytes`);
  }
  return concatBytes(
    Uint8Array.of(TAG_VERSION, version, TAG_LOCAL),
    LOGICAL,
    local,
    Uint8Array.of(TAG_REMOTE),
    LOGICAL,
    remote,
  );
}

function readVersion(payload: Uint8Array): [number, number] {
  if (payload[0] !== TAG_VERSION) return [0, 0];
  let value = 0;
  // A uint32 varint takes at most 5 bytes.
  for (let i = 1; i < Math.min(payload.length, 6); i++) {
    const byte = payload[i]!;
    value += (byte & 0x7f) * 2 ** (7 * (i - 1));
    if (!(byte & 0x80)) {
      if (value > 0xffff_ffff) break;
      return [value, i + 1];
    }
  }
  throw new SafetyNumberError("bad version field in safety number payload");
}

function equalAt(payload: Uint8Array, at: number, expected: Uint8Array): boolean {
  return expected.every((b, i) => payload[at + i] === b);
}

/** [version, local, remote] from a QR payload; SafetyNumberError unless canonical. */
export function decodePayload(
  payload: Uint8Array,
  version: number = VERSION,
): [number, Uint8Array, Uint8Array] {
  if (payload.length < 1 || payload.length > MAX_PAYLOAD_BYTES) {
    throw new SafetyNumberError(`safety number payload must be 1..${MAX_PAYLOAD_BYTES} bytes`);
  }
  if (payload[0] !== TAG_VERSION && payload[0] !== TAG_LOCAL) {
    throw new SafetyNumberError("not a safety number payload");
  }
  const [found, offset] = readVersion(payload);
  if (found !== version) return [found, new Uint8Array(0), new Uint8Array(0)];
  if (payload.length !== PAYLOAD_LEN || offset !== 2) {
    throw new SafetyNumberError(`a version ${version} payload is ${PAYLOAD_LEN} canonical bytes`);
  }
  const localAt = offset + 1 + LOGICAL.length;
  const remoteTagAt = localAt + SCANNABLE_LEN;
  const remoteAt = remoteTagAt + 1 + LOGICAL.length;
  if (
    payload[offset] !== TAG_LOCAL ||
    !equalAt(payload, offset + 1, LOGICAL) ||
    payload[remoteTagAt] !== TAG_REMOTE ||
    !equalAt(payload, remoteTagAt + 1, LOGICAL)
  ) {
    throw new SafetyNumberError("malformed safety number payload");
  }
  return [found, payload.slice(localAt, remoteTagAt), payload.slice(remoteAt)];
}

/** Both halves of a safety number as seen from the local side. */
export class SafetyNumber {
  constructor(
    readonly version: number,
    readonly local: Uint8Array,
    readonly remote: Uint8Array,
    readonly digits: string,
  ) {}

  display(): string {
    return formatDigits(this.digits);
  }

  groups(): string[] {
    return this.display().split(" ");
  }

  qrPayload(): Uint8Array {
    return encodePayload(this.version, this.local, this.remote);
  }

  /** The other side's local half must equal our remote half and vice versa; both compared. */
  compare(scanned: Uint8Array): Comparison {
    const [version, theirLocal, theirRemote] = decodePayload(scanned, this.version);
    if (version !== this.version) return "different_version";
    const sameRemote = constantTimeEqual(theirLocal, this.remote);
    const sameLocal = constantTimeEqual(theirRemote, this.local);
    return sameRemote && sameLocal ? "match" : "mismatch";
  }
}

/** libsignal's Fingerprint::new over raw identifier and key bytes. */
export async function numericFingerprint(
  localId: Uint8Array,
  localKey: Uint8Array,
  remoteId: Uint8Array,
  remoteKey: Uint8Array,
  version: number = VERSION,
  iterations: number = ITERATIONS,
): Promise<SafetyNumber> {
  checkVersion(version);
  const [localHash, remoteHash] = await Promise.all([
    fingerprintHash(localId, localKey, iterations),
    fingerprintHash(remoteId, remoteKey, iterations),
  ]);
  const halves = [encodeHalf(localHash), encodeHalf(remoteHash)].sort();
  return new SafetyNumber(
    version,
    localHash.slice(0, SCANNABLE_LEN),
    remoteHash.slice(0, SCANNABLE_LEN),
    halves.join(""),
  );
}

/** The 36 ASCII bytes of a canonical lowercase UUID account id; RangeError otherwise. */
export function accountStableId(accountId: string): Uint8Array {
  if (!UUID.test(accountId)) throw new RangeError("account id must be a lowercase UUID");
  return utf8encode(accountId);
}

/** 0xED followed by the 32-byte Ed25519 master public key. */
export function masterIdentityKey(masterPublicB64: string): Uint8Array {
  const raw = b64decode(masterPublicB64);
  if (raw.length !== ED25519_KEY_LEN) {
    throw new RangeError(`master public key must be ${ED25519_KEY_LEN} bytes, got ${raw.length}`);
  }
  return concatBytes(Uint8Array.of(KEY_TYPE_ED25519), raw);
}

/** The safety number between two Porch accounts, seen from the local one. */
export function safetyNumber(
  localAccountId: string,
  localMasterPublicB64: string,
  remoteAccountId: string,
  remoteMasterPublicB64: string,
): Promise<SafetyNumber> {
  return numericFingerprint(
    accountStableId(localAccountId),
    masterIdentityKey(localMasterPublicB64),
    accountStableId(remoteAccountId),
    masterIdentityKey(remoteMasterPublicB64),
  );
}
