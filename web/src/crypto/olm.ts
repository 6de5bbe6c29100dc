/**
 * One device's Olm account and its sessions with peers, on libolm (WebAssembly); mirrors
 * src/porch/crypto/olm.py, which wraps vodozemac, and speaks the same wire: identity and
 * one-time keys as unpadded base64, pre-key (0) and normal (1) messages whose body is the raw
 * message bytes (the frame carries them base64-encoded, which is libolm's own output form).
 *
 * Session selection follows olm.py: several sessions may exist with one peer device, an
 * incoming message is tried against each, and whichever decrypted last is the one we send
 * with, so both sides converge. No I/O: callers persist the pickles. Pickles are libolm's
 * format, not vodozemac's: a browser profile and a terminal profile never share one.
 */

import { b64decode, b64encode } from "../protocol/codec";
import { BAD_KEY, CryptoError, DecryptError } from "./errors";
import { type Libolm, sessionDecrypt, sessionEncrypt } from "./olm_raw";
import { oneTimeKeyPayload } from "./signing";

type Account = InstanceType<Libolm["olm"]["Account"]>;
type Session = InstanceType<Libolm["olm"]["Session"]>;

export type PeerDevice = readonly [account: string, device: number];

export const PICKLE_KEY_LEN = 32;
export const MAX_SESSIONS_PER_PEER = 5;
export const PRE_KEY = 0;
export const NORMAL = 1;

export interface OneTimeKey {
  keyId: string;
  curve25519: string;
  signature: string;
  fallback: boolean;
}

export interface OlmCiphertext {
  kind: number; // 0 = pre-key message, 1 = normal message
  body: Uint8Array;
}

function checkPickleKey(key: Uint8Array): void {
  if (key.length !== PICKLE_KEY_LEN) {
    throw new CryptoError(`pickle key must be ${PICKLE_KEY_LEN} bytes`, BAD_KEY);
  }
}

function peerKey(peer: PeerDevice): string {
  return `${peer[0]}/${peer[1]}`;
}

function reason(exc: unknown): string {
  return exc instanceof Error ? exc.message : String(exc);
}

export class OlmMachine {
  readonly #lib: Libolm;
  readonly #account: Account;
  readonly #pickleKey: Uint8Array;
  readonly #sessions = new Map<string, Session[]>();
  readonly #dirty = new Set<string>();
  #accountDirty = false;

  private constructor(lib: Libolm, account: Account, pickleKey: Uint8Array) {
    checkPickleKey(pickleKey);
    this.#lib = lib;
    this.#account = account;
    this.#pickleKey = pickleKey.slice();
  }

  static create(lib: Libolm, pickleKey: Uint8Array): OlmMachine {
    const account = new lib.olm.Account();
    account.create();
    const machine = new OlmMachine(lib, account, pickleKey);
    machine.#accountDirty = true; // a fresh account has never been persisted
    return machine;
  }

  static fromPickle(lib: Libolm, pickled: string, pickleKey: Uint8Array): OlmMachine {
    checkPickleKey(pickleKey);
    const account = new lib.olm.Account();
    try {
      account.unpickle(pickleKey.slice(), pickled);
    } catch (exc) {
      account.free();
      throw new CryptoError(`cannot unpickle Olm account: ${reason(exc)}`, BAD_KEY);
    }
    return new OlmMachine(lib, account, pickleKey);
  }

  // Identity -----------------------------------------------------------------------------

  get curve25519(): string {
    return (JSON.parse(this.#account.identity_keys()) as { curve25519: string }).curve25519;
  }

  get ed25519(): string {
    return (JSON.parse(this.#account.identity_keys()) as { ed25519: string }).ed25519;
  }

  /** Sign with the device's Ed25519 key (a copy: libolm zeroes the array it is given). */
  sign(payload: Uint8Array): string {
    return this.#account.sign(payload.slice());
  }

  // Keys ---------------------------------------------------------------------------------

  #signed(keyId: string, curve25519: string, fallback: boolean): OneTimeKey {
    const signature = this.sign(oneTimeKeyPayload(keyId, curve25519, fallback));
    return { keyId, curve25519, signature, fallback };
  }

  /** Generate, sign and mark published `count` one-time keys (the caller uploads them). */
  generateOneTimeKeys(count: number): OneTimeKey[] {
    if (!Number.isInteger(count) || count < 0 || count > this.maxOneTimeKeys) {
      throw new RangeError(`count must be in 0..${this.maxOneTimeKeys}`);
    }
    this.#account.generate_one_time_keys(count);
    const keys = JSON.parse(this.#account.one_time_keys()) as {
      curve25519: Record<string, string>;
    };
    const signed = Object.entries(keys.curve25519)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, key]) => this.#signed(id, key, false));
    this.#account.mark_keys_as_published();
    this.#accountDirty = true;
    return signed;
  }

  generateFallbackKey(): OneTimeKey {
    this.#account.generate_fallback_key();
    const keys = JSON.parse(this.#account.unpublished_fallback_key()) as {
      curve25519: Record<string, string>;
    };
    const [entry] = Object.entries(keys.curve25519);
    if (!entry) throw new CryptoError("libolm produced no fallback key", BAD_KEY);
    this.#account.mark_keys_as_published();
    this.#accountDirty = true;
    return this.#signed(entry[0], entry[1], true);
  }

  get maxOneTimeKeys(): number {
    return this.#account.max_number_of_one_time_keys();
  }

  // Sessions -----------------------------------------------------------------------------

  hasSession(peer: PeerDevice): boolean {
    return (this.#sessions.get(peerKey(peer))?.length ?? 0) > 0;
  }

  /** Put `session` first for `peer` and free the least recently used beyond the cap. */
  #promote(peer: PeerDevice, session: Session): void {
    const key = peerKey(peer);
    const sessions = (this.#sessions.get(key) ?? []).filter((s) => s !== session);
    sessions.unshift(session);
    for (const dropped of sessions.splice(MAX_SESSIONS_PER_PEER)) dropped.free();
    this.#sessions.set(key, sessions);
    this.#dirty.add(key);
  }

  /** Start a session from a peer's verified identity key and a claimed one-time key. */
  createOutboundSession(peer: PeerDevice, identityCurve25519: string, oneTimeKey: string): void {
    const session = new this.#lib.olm.Session();
    try {
      session.create_outbound(this.#account, identityCurve25519, oneTimeKey);
    } catch (exc) {
      session.free();
      throw new CryptoError(`cannot create Olm session: ${reason(exc)}`, BAD_KEY);
    }
    this.#promote(peer, session);
  }

  encrypt(peer: PeerDevice, plaintext: Uint8Array): OlmCiphertext {
    const session = this.#sessions.get(peerKey(peer))?.[0];
    if (!session) throw new CryptoError(`no Olm session with ${peerKey(peer)}`, BAD_KEY);
    const { type, body } = sessionEncrypt(this.#lib, session, plaintext);
    this.#dirty.add(peerKey(peer));
    return { kind: type, body: b64decode(body) };
  }

  /**
   * Decrypt a message from `peer`, whose identity key the caller has verified. A pre-key
   * message goes to the session it belongs to if any, else creates an inbound session and
   * only then (after it authenticated) uses up our one-time key. DecryptError on failure,
   * which changes no state.
   */
  decrypt(peer: PeerDevice, identityCurve25519: string, ciphertext: OlmCiphertext): Uint8Array {
    if (ciphertext.kind !== PRE_KEY && ciphertext.kind !== NORMAL) {
      throw new DecryptError(`unknown Olm message type ${ciphertext.kind}`);
    }
    const body = b64encode(ciphertext.body);
    const sessions = [...(this.#sessions.get(peerKey(peer)) ?? [])];
    if (ciphertext.kind === NORMAL) {
      for (const session of sessions) {
        try {
          const plaintext = sessionDecrypt(this.#lib, session, NORMAL, body);
          this.#promote(peer, session);
          return plaintext;
        } catch {
          continue;
        }
      }
      throw new DecryptError(`no Olm session with ${peerKey(peer)} decrypts the message`);
    }
    for (const session of sessions) {
      if (session.matches_inbound_from(identityCurve25519, body)) {
        // The message belongs to this session: a failure must not fall through to a second
        // session from the same one-time key.
        const plaintext = sessionDecrypt(this.#lib, session, PRE_KEY, body);
        this.#promote(peer, session);
        return plaintext;
      }
    }
    const session = new this.#lib.olm.Session();
    let plaintext: Uint8Array;
    try {
      session.create_inbound_from(this.#account, identityCurve25519, body);
      plaintext = sessionDecrypt(this.#lib, session, PRE_KEY, body);
    } catch (exc) {
      session.free();
      throw new DecryptError(`cannot create inbound Olm session: ${reason(exc)}`);
    }
    this.#account.remove_one_time_keys(session);
    this.#accountDirty = true;
    this.#promote(peer, session);
    return plaintext;
  }

  forgetPeer(peer: PeerDevice): void {
    const key = peerKey(peer);
    for (const session of this.#sessions.get(key) ?? []) session.free();
    this.#sessions.delete(key);
    this.#dirty.add(key);
  }

  // Persistence --------------------------------------------------------------------------

  pickleAccount(): string {
    return this.#account.pickle(this.#pickleKey.slice());
  }

  /** A JSON list of libolm session pickles, preferred first; "[]" if there are none. */
  pickleSessions(peer: PeerDevice): string {
    const sessions = this.#sessions.get(peerKey(peer)) ?? [];
    return JSON.stringify(sessions.map((s) => s.pickle(this.#pickleKey.slice())));
  }

  loadSessions(peer: PeerDevice, pickled: string): void {
    let items: unknown;
    try {
      items = JSON.parse(pickled);
    } catch {
      throw new CryptoError("session pickle is not JSON", BAD_KEY);
    }
    if (!Array.isArray(items) || !items.every((i) => typeof i === "string")) {
      throw new CryptoError("session pickle must be a JSON list of strings", BAD_KEY);
    }
    const sessions: Session[] = [];
    try {
      for (const item of items.slice(0, MAX_SESSIONS_PER_PEER) as string[]) {
        const session = new this.#lib.olm.Session();
        sessions.push(session);
        session.unpickle(this.#pickleKey.slice(), item);
      }
    } catch (exc) {
      for (const session of sessions) session.free();
      throw new CryptoError(`cannot unpickle Olm session: ${reason(exc)}`, BAD_KEY);
    }
    for (const old of this.#sessions.get(peerKey(peer)) ?? []) old.free();
    if (sessions.length) this.#sessions.set(peerKey(peer), sessions);
    else this.#sessions.delete(peerKey(peer));
  }

  dirtyPeers(): Set<string> {
    return new Set(this.#dirty);
  }

  get accountDirty(): boolean {
    return this.#accountDirty;
  }

  clearDirty(): void {
    this.#dirty.clear();
    this.#accountDirty = false;
  }

  /** Free the wasm memory of the account and every session. */
  free(): void {
    for (const sessions of this.#sessions.values()) for (const s of sessions) s.free();
    this.#sessions.clear();
    this.#account.free();
  }
}
