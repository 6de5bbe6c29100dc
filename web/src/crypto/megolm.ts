/**
 * Megolm group sessions on libolm; mirrors src/porch/crypto/megolm.py (vodozemac there): the
 * same session keys (v2, signed, base64), the same raw message bytes, the same replay record
 * (an index that decrypted one ciphertext refuses any other; the same one again is a
 * duplicate), and the same binding of a session to the device that shares it
 * (groupKeyPayload, signed with the device's Ed25519 key in the group_key content).
 *
 * Pickles: libolm's session pickle plus the replay record (or creation time), sealed with
 * AES-256-GCM under HKDF-SHA256(pickle key, info "porch/megolm-pickle/v1") as megolm.py seals
 * its own, so the record cannot be edited at rest. WebCrypto does the sealing.
 */

import { sha256 } from "@noble/hashes/sha2.js";
import {
  ab,
  b64decode,
  b64encode,
  concatBytes,
  hexdecode,
  hexencode,
  utf8decode,
  utf8encode,
} from "../protocol/codec";
import { BAD_KEY, CryptoError, DecryptError, REPLAYED, UNKNOWN_INDEX } from "./errors";
import { type Libolm, groupDecrypt, groupEncrypt } from "./olm_raw";
import { verifyEd25519 } from "./signing";

export const PICKLE_KEY_LEN = 32;
export const MAX_MESSAGE_BYTES = 80 * 1024;
export const MAX_TRACKED_INDICES = 1_000;
export const MAX_MESSAGE_INDEX = 2 ** 32 - 1;
export const MAX_GROUP_ID_BYTES = 128;
const GROUP_KEY_LABEL = utf8encode("porch/group-key/v1\0");
const PICKLE_VERSION = 0x01;
const PICKLE_INFO = utf8encode("porch/megolm-pickle/v1");
const NONCE_LEN = 12;
const DIGEST_LEN = 16; // truncated SHA-256 of a ciphertext, as megolm.py keeps

type Outbound = InstanceType<Libolm["olm"]["OutboundGroupSession"]>;
type Inbound = InstanceType<Libolm["olm"]["InboundGroupSession"]>;

function reason(exc: unknown): string {
  return exc instanceof Error ? exc.message : String(exc);
}

function checkPickleKey(key: Uint8Array): void {
  if (key.length !== PICKLE_KEY_LEN)
    throw new CryptoError(`pickle key must be ${PICKLE_KEY_LEN} bytes`, BAD_KEY);
}

/** Bytes the sharing device's Ed25519 key signs for a group_key content. */
export function groupKeyPayload(groupId: string, sessionId: string): Uint8Array {
  let sessionKey: Uint8Array;
  try {
    sessionKey = b64decode(sessionId);
  } catch {
    throw new CryptoError("session id is not base64", BAD_KEY);
  }
  if (sessionKey.length !== 32)
    throw new CryptoError("session id must be a 32-byte Ed25519 key", BAD_KEY);
  const group = utf8encode(groupId);
  if (group.length < 1 || group.length > MAX_GROUP_ID_BYTES || group.includes(0)) {
    throw new CryptoError(`group id must be 1..${MAX_GROUP_ID_BYTES} bytes without NUL`);
  }
  return concatBytes(GROUP_KEY_LABEL, group, Uint8Array.of(0), sessionKey);
}

async function wrapKey(pickleKey: Uint8Array): Promise<CryptoKey> {
  checkPickleKey(pickleKey);
  const subtle = globalThis.crypto.subtle;
  const ikm = await subtle.importKey("raw", ab(pickleKey), "HKDF", false, ["deriveKey"]);
  return subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: PICKLE_INFO },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

async function seal(kind: string, obj: object, pickleKey: Uint8Array): Promise<string> {
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_LEN));
  const header = Uint8Array.of(PICKLE_VERSION);
  const sealed = await globalThis.crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: concatBytes(header, utf8encode(kind)) },
    await wrapKey(pickleKey),
    utf8encode(JSON.stringify(obj)),
  );
  return b64encode(concatBytes(header, nonce, new Uint8Array(sealed)));
}

async function unseal(
  kind: string,
  pickled: string,
  pickleKey: Uint8Array,
): Promise<Record<string, unknown>> {
  const key = await wrapKey(pickleKey);
  let raw: Uint8Array;
  try {
    raw = b64decode(pickled);
  } catch {
    throw new CryptoError("Megolm pickle is not base64", BAD_KEY);
  }
  if (raw.length < 1 + NONCE_LEN + 16 || raw[0] !== PICKLE_VERSION) {
    throw new CryptoError("Megolm pickle has an unknown format", BAD_KEY);
  }
  let body: ArrayBuffer;
  try {
    body = await globalThis.crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: raw.slice(1, 1 + NONCE_LEN),
        additionalData: concatBytes(raw.subarray(0, 1), utf8encode(kind)),
      },
      key,
      raw.slice(1 + NONCE_LEN),
    );
  } catch {
    throw new CryptoError("Megolm pickle does not open with this key", BAD_KEY);
  }
  const obj: unknown = JSON.parse(utf8decode(new Uint8Array(body)));
  if (typeof obj !== "object" || obj === null)
    throw new CryptoError("Megolm pickle is malformed", BAD_KEY);
  return obj as Record<string, unknown>;
}

/** Load libolm's pickle into a fresh session object, freeing it if the pickle is refused. */
function unpickle<T extends Outbound | Inbound>(
  session: T,
  pickled: string,
  pickleKey: Uint8Array,
): T {
  try {
    session.unpickle(pickleKey.slice(), pickled);
  } catch (exc) {
    session.free();
    throw new CryptoError(`cannot unpickle Megolm session: ${reason(exc)}`, BAD_KEY);
  }
  return session;
}

/** This device's sending session for one group. */
export class OutboundGroupSession {
  readonly #lib: Libolm;
  readonly #session: Outbound;
  readonly #pickleKey: Uint8Array;
  readonly createdAtMs: number;

  private constructor(lib: Libolm, session: Outbound, createdAtMs: number, pickleKey: Uint8Array) {
    checkPickleKey(pickleKey);
    this.#lib = lib;
    this.#session = session;
    this.createdAtMs = createdAtMs;
    this.#pickleKey = pickleKey.slice();
  }

  static create(lib: Libolm, pickleKey: Uint8Array, nowMs: number): OutboundGroupSession {
    if (!Number.isSafeInteger(nowMs) || nowMs < 0)
      throw new RangeError("nowMs must be an integer in 0..2**53-1");
    const session = new lib.olm.OutboundGroupSession();
    session.create();
    return new OutboundGroupSession(lib, session, nowMs, pickleKey);
  }

  get sessionId(): string {
    return this.#session.session_id();
  }

  /** The index the next message will use, which is also how many were sent. */
  get messageIndex(): number {
    return this.#session.message_index();
  }

  /** The signed session key at the current index (base64), to share over Olm. */
  sessionKey(): string {
    return this.#session.session_key();
  }

  /** Encrypt one (already padded) content; the raw Megolm message goes to every member. */
  encrypt(plaintext: Uint8Array): Uint8Array {
    if (this.messageIndex >= MAX_MESSAGE_INDEX)
      throw new CryptoError("Megolm session is exhausted; rotate it", BAD_KEY);
    return groupEncrypt(this.#lib, this.#session, plaintext);
  }

  pickle(): Promise<string> {
    const obj = {
      created: this.createdAtMs,
      session: this.#session.pickle(this.#pickleKey.slice()),
    };
    return seal("outbound", obj, this.#pickleKey);
  }

  static async fromPickle(
    lib: Libolm,
    pickled: string,
    pickleKey: Uint8Array,
  ): Promise<OutboundGroupSession> {
    const obj = await unseal("outbound", pickled, pickleKey);
    if (typeof obj.session !== "string" || !Number.isSafeInteger(obj.created)) {
      throw new CryptoError("Megolm pickle is malformed", BAD_KEY);
    }
    const session = unpickle(new lib.olm.OutboundGroupSession(), obj.session, pickleKey);
    return new OutboundGroupSession(lib, session, obj.created as number, pickleKey);
  }

  free(): void {
    this.#session.free();
  }
}

export interface GroupPlaintext {
  plaintext: Uint8Array;
  messageIndex: number;
  duplicate: boolean; // the same ciphertext decrypted before (a retransmission)
}

/** Another device's group session as this device knows it, with its replay record. */
export class InboundGroupSession {
  readonly #lib: Libolm;
  readonly #session: Inbound;
  readonly #pickleKey: Uint8Array;
  readonly #seen: Map<number, string>;

  private constructor(
    lib: Libolm,
    session: Inbound,
    pickleKey: Uint8Array,
    seen?: Map<number, string>,
  ) {
    checkPickleKey(pickleKey);
    this.#lib = lib;
    this.#session = session;
    this.#pickleKey = pickleKey.slice();
    this.#seen = new Map(seen ?? []);
  }

  /**
   * A session from a group_key content that came over Olm from a device whose Ed25519 key the
   * caller verified: SignatureError unless the signature binds the session to that device and
   * group, CryptoError bad_key for a malformed key or one of another session.
   */
  static async fromGroupKey(
    lib: Libolm,
    args: {
      groupId: string;
      sessionId: string;
      sessionKey: string;
      signature: string;
      senderEd25519: string;
      pickleKey: Uint8Array;
    },
  ): Promise<InboundGroupSession> {
    await verifyEd25519(
      args.senderEd25519,
      groupKeyPayload(args.groupId, args.sessionId),
      args.signature,
    );
    const session = new lib.olm.InboundGroupSession();
    try {
      session.create(args.sessionKey);
    } catch (exc) {
      session.free();
      throw new CryptoError(`bad Megolm session key: ${reason(exc)}`, BAD_KEY);
    }
    if (session.session_id() !== args.sessionId) {
      session.free();
      throw new CryptoError("session key belongs to another session", BAD_KEY);
    }
    return new InboundGroupSession(lib, session, args.pickleKey);
  }

  get sessionId(): string {
    return this.#session.session_id();
  }

  get firstKnownIndex(): number {
    return this.#session.first_known_index();
  }

  /** Decrypt and authenticate one raw Megolm message; DecryptError changing nothing. */
  decrypt(ciphertext: Uint8Array): GroupPlaintext {
    if (ciphertext.length > MAX_MESSAGE_BYTES)
      throw new DecryptError(`Megolm message exceeds ${MAX_MESSAGE_BYTES} bytes`);
    let result: { plaintext: Uint8Array; index: number };
    try {
      result = groupDecrypt(this.#lib, this.#session, ciphertext);
    } catch (exc) {
      if (reason(exc).includes("UNKNOWN_MESSAGE_INDEX")) {
        throw new DecryptError(
          `the message precedes the first known index ${this.firstKnownIndex}`,
          UNKNOWN_INDEX,
        );
      }
      throw exc instanceof DecryptError
        ? exc
        : new DecryptError(`cannot decrypt Megolm message: ${reason(exc)}`);
    }
    const digest = hexencode(sha256(ciphertext).subarray(0, DIGEST_LEN));
    const previous = this.#seen.get(result.index);
    if (previous === undefined && this.#seen.size >= MAX_TRACKED_INDICES) {
      throw new DecryptError("session decrypted too many messages; the sender must rotate");
    }
    if (previous !== undefined && previous !== digest) {
      throw new DecryptError(`message index ${result.index} was already used`, REPLAYED);
    }
    this.#seen.set(result.index, digest);
    return {
      plaintext: result.plaintext,
      messageIndex: result.index,
      duplicate: previous !== undefined,
    };
  }

  pickle(): Promise<string> {
    const seen = [...this.#seen.entries()].sort(([a], [b]) => a - b);
    return seal(
      "inbound",
      { seen, session: this.#session.pickle(this.#pickleKey.slice()) },
      this.#pickleKey,
    );
  }

  static async fromPickle(
    lib: Libolm,
    pickled: string,
    pickleKey: Uint8Array,
  ): Promise<InboundGroupSession> {
    const obj = await unseal("inbound", pickled, pickleKey);
    const seen = new Map<number, string>();
    if (typeof obj.session !== "string" || !Array.isArray(obj.seen)) {
      throw new CryptoError("Megolm pickle is malformed", BAD_KEY);
    }
    for (const entry of obj.seen as unknown[]) {
      if (
        !Array.isArray(entry) ||
        !Number.isSafeInteger(entry[0]) ||
        typeof entry[1] !== "string"
      ) {
        throw new CryptoError("Megolm pickle is malformed", BAD_KEY);
      }
      seen.set(entry[0] as number, hexencode(hexdecode(entry[1] as string)));
    }
    const session = unpickle(new lib.olm.InboundGroupSession(), obj.session, pickleKey);
    return new InboundGroupSession(lib, session, pickleKey, seen);
  }

  free(): void {
    this.#session.free();
  }
}
