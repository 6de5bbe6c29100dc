/**
 * The sealed group state (docs/protocol.md, "Sealed group state"); mirrors
 * src/porch/crypto/group_state.py byte for byte. The state (name, description, avatar,
 * timer, settings) is canonical JSON, padded (ISO/IEC 7816-4) to a size bucket and sealed
 * with AES-256-GCM (WebCrypto) under the 32-byte state key of the epoch the blob names:
 *
 *     blob = 0x01 || u32 epoch || nonce (12) || ciphertext || tag (16)
 *     aad  = "porch/group-state/v1\0" || u16 len(group id) || group id || u64 revision || header
 *
 * The associated data binds a blob to its group and revision, so the server can neither move
 * a blob to another group nor serve an old revision as a newer one.
 */

import { ab, concatBytes, utf8decode, utf8encode } from "../protocol/codec";
import { unpad } from "./content";
import { BAD_KEY, ContentError, CryptoError, DecryptError } from "./errors";

export const STATE_KEY_LEN = 32;
export const BLOB_VERSION = 0x01;
export const STATE_VERSION = 1;
export const NONCE_LEN = 12;
export const TAG_LEN = 16;
export const HEADER_LEN = 5; // version, key epoch
export const MAX_GROUP_ID_BYTES = 128;
export const MAX_EPOCH = 2 ** 32 - 1;
export const MAX_NAME_CHARS = 128;
export const MAX_DESCRIPTION_CHARS = 1024;
export const MAX_AVATAR_CHARS = 512;
export const MAX_TIMER_SECONDS = 365 * 24 * 3600;
export const BUCKETS = [1024, 2048, 4096, 8192] as const;
export const MAX_BLOB_BYTES = HEADER_LEN + NONCE_LEN + BUCKETS[3] + TAG_LEN;
export const STALE_REVISION = "stale_revision";
export const UNSUPPORTED_VERSION = "unsupported_version";
const AAD_LABEL = utf8encode("porch/group-state/v1\0");

export interface GroupSettings {
  membersCanEdit: boolean; // false: only admins change the state
  joinApproval: boolean; // true: an admin approves joins by link
}

export interface GroupState {
  name: string;
  description: string;
  avatar: string | null; // an attachment reference, opaque here
  timerSeconds: number; // disappearing messages; 0 is off
  settings: GroupSettings;
}

export const DEFAULT_SETTINGS: GroupSettings = { membersCanEdit: true, joinApproval: false };

function checkText(
  value: unknown,
  what: string,
  limit: number,
  opts: { allowEmpty: boolean; lines: boolean },
): void {
  if (typeof value !== "string") throw new ContentError(`${what} must be a string`);
  if (!opts.allowEmpty && !value) throw new ContentError(`${what} must not be empty`);
  // Python counts code points: a surrogate pair is one character there.
  if ([...value].length > limit) throw new ContentError(`${what} exceeds ${limit} characters`);
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (c < 0x20 && !(opts.lines && (ch === "\n" || ch === "\t")))
      throw new ContentError(`${what} contains control characters`);
    if (c >= 0xd800 && c <= 0xdfff) throw new ContentError(`${what} is not valid Unicode`);
  }
}

function checkFields(
  name: unknown,
  description: unknown,
  avatar: unknown,
  timer: unknown,
  canEdit: unknown,
  approval: unknown,
): void {
  checkText(name, "group name", MAX_NAME_CHARS, { allowEmpty: false, lines: false });
  checkText(description, "group description", MAX_DESCRIPTION_CHARS, {
    allowEmpty: true,
    lines: true,
  });
  if (avatar !== null && avatar !== undefined)
    checkText(avatar, "group avatar", MAX_AVATAR_CHARS, { allowEmpty: false, lines: false });
  if (!Number.isInteger(timer) || (timer as number) < 0 || (timer as number) > MAX_TIMER_SECONDS)
    throw new ContentError(`group timer must be an integer in 0..${MAX_TIMER_SECONDS}`);
  if (typeof canEdit !== "boolean" || typeof approval !== "boolean")
    throw new ContentError("group settings must be booleans");
}

/** Canonical JSON (keys sorted, compact, UTF-8 unescaped) as Python's json.dumps gives it. */
export function stateToJson(state: GroupState): Uint8Array {
  const s = state.settings;
  checkFields(
    state.name,
    state.description,
    state.avatar,
    state.timerSeconds,
    s.membersCanEdit,
    s.joinApproval,
  );
  // Keys written in sorted order; JSON.stringify escapes strings as json.dumps does for
  // everything checkFields lets through (\n, \t, quotes, backslashes; no other controls).
  const obj = {
    avatar: state.avatar,
    description: state.description,
    name: state.name,
    settings: { join_approval: s.joinApproval, members_can_edit: s.membersCanEdit },
    timer: state.timerSeconds,
    v: STATE_VERSION,
  };
  return utf8encode(JSON.stringify(obj));
}

export function padState(data: Uint8Array): Uint8Array {
  for (const bucket of BUCKETS) {
    if (data.length < bucket) {
      const out = new Uint8Array(bucket);
      out.set(data);
      out[data.length] = 0x80;
      return out;
    }
  }
  throw new ContentError("group state is too large");
}

function checkIds(groupId: string, revision: number, epoch: number): Uint8Array {
  const raw = utf8encode(groupId);
  if (!raw.length || raw.length > MAX_GROUP_ID_BYTES || raw.includes(0))
    throw new CryptoError(`group id must be 1..${MAX_GROUP_ID_BYTES} bytes without NUL`);
  if (!Number.isSafeInteger(revision) || revision < 0)
    throw new CryptoError("revision must be an integer in 0..2**53-1");
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH)
    throw new CryptoError("key epoch must be an integer in 0..2**32-1");
  return raw;
}

function header(epoch: number): Uint8Array {
  const out = new Uint8Array(HEADER_LEN);
  out[0] = BLOB_VERSION;
  new DataView(out.buffer).setUint32(1, epoch);
  return out;
}

/** label || u16 len(group id) || group id || u64 revision || header. */
export function associatedData(groupId: string, revision: number, head: Uint8Array): Uint8Array {
  const raw = utf8encode(groupId);
  const lens = new Uint8Array(2 + raw.length + 8);
  const view = new DataView(lens.buffer);
  view.setUint16(0, raw.length);
  lens.set(raw, 2);
  view.setBigUint64(2 + raw.length, BigInt(revision));
  return concatBytes(AAD_LABEL, lens, head);
}

function importKey(key: Uint8Array, usage: KeyUsage): Promise<CryptoKey> {
  if (key.length !== STATE_KEY_LEN)
    throw new CryptoError(`group state key must be ${STATE_KEY_LEN} bytes`, BAD_KEY);
  return globalThis.crypto.subtle.importKey("raw", ab(key), "AES-GCM", false, [usage]);
}

/** sealGroupState with a chosen nonce: for test vectors only (never reuse a nonce). */
export async function sealGroupStateWith(
  key: Uint8Array,
  groupId: string,
  revision: number,
  epoch: number,
  state: GroupState,
  nonce: Uint8Array,
): Promise<Uint8Array> {
  const aesKey = await importKey(key, "encrypt");
  checkIds(groupId, revision, epoch);
  if (nonce.length !== NONCE_LEN) throw new CryptoError(`nonce must be ${NONCE_LEN} bytes`);
  const head = header(epoch);
  const sealed = await globalThis.crypto.subtle.encrypt(
    { name: "AES-GCM", iv: ab(nonce), additionalData: ab(associatedData(groupId, revision, head)) },
    aesKey,
    ab(padState(stateToJson(state))),
  );
  return concatBytes(head, nonce, new Uint8Array(sealed));
}

/** The blob to upload as `revision` of the group state, sealed under the key of `epoch`. */
export function sealGroupState(
  key: Uint8Array,
  groupId: string,
  revision: number,
  epoch: number,
  state: GroupState,
): Promise<Uint8Array> {
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_LEN));
  return sealGroupStateWith(key, groupId, revision, epoch, state, nonce);
}

/** The key epoch a blob names, read before opening it to pick the key. */
export function blobEpoch(blob: Uint8Array): number {
  if (blob.length < HEADER_LEN + NONCE_LEN + TAG_LEN || blob.length > MAX_BLOB_BYTES)
    throw new DecryptError("group state blob has an impossible size");
  if (blob[0] !== BLOB_VERSION)
    throw new DecryptError(`unknown group state blob version ${blob[0]}`, UNSUPPORTED_VERSION);
  return new DataView(blob.buffer, blob.byteOffset + 1, 4).getUint32(0);
}

/**
 * Open the blob the server serves as `revision` of `groupId`. Anything older than
 * `minRevision` (the newest this device accepted) is refused with `stale_revision`;
 * `decrypt_failed` for a blob altered, moved, or sealed under another key.
 */
export async function openGroupState(
  key: Uint8Array,
  groupId: string,
  revision: number,
  blob: Uint8Array,
  minRevision = 0,
): Promise<GroupState> {
  const aesKey = await importKey(key, "decrypt");
  const epoch = blobEpoch(blob);
  checkIds(groupId, revision, epoch);
  if (revision < minRevision)
    throw new DecryptError(
      `group state revision ${revision} is older than ${minRevision}`,
      STALE_REVISION,
    );
  const head = blob.slice(0, HEADER_LEN);
  let padded: ArrayBuffer;
  try {
    padded = await globalThis.crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: blob.slice(HEADER_LEN, HEADER_LEN + NONCE_LEN),
        additionalData: ab(associatedData(groupId, revision, head)),
      },
      aesKey,
      blob.slice(HEADER_LEN + NONCE_LEN),
    );
  } catch {
    throw new DecryptError("group state does not open (tampered, moved or wrong key)");
  }
  return decodeState(unpad(new Uint8Array(padded)));
}

/** Parse state JSON (after unpadding); unknown fields are ignored. */
export function decodeState(data: Uint8Array): GroupState {
  let obj: unknown;
  try {
    obj = JSON.parse(utf8decode(data));
  } catch {
    throw new ContentError("group state is not valid JSON");
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj))
    throw new ContentError("group state must be a JSON object");
  const o = obj as Record<string, unknown>;
  if (o.v !== STATE_VERSION) {
    const err = new ContentError(`unsupported group state version ${String(o.v)}`);
    throw Object.assign(err, { code: UNSUPPORTED_VERSION });
  }
  const settings = o.settings;
  if (typeof settings !== "object" || settings === null || Array.isArray(settings))
    throw new ContentError("group settings must be an object");
  const s = settings as Record<string, unknown>;
  checkFields(o.name, o.description, o.avatar, o.timer, s.members_can_edit, s.join_approval);
  return {
    name: o.name as string,
    description: o.description as string,
    avatar: (o.avatar as string | null | undefined) ?? null,
    timerSeconds: o.timer as number,
    settings: {
      membersCanEdit: s.members_can_edit as boolean,
      joinApproval: s.join_approval as boolean,
    },
  };
}
