/**
 * The body of a kind-2 (Megolm) envelope (docs/protocol.md, "Group message body"); mirrors
 * src/porch/crypto/group_message.py:
 *
 *     0x01 || u8 len(group id) || group id (UTF-8) || session id (32 raw bytes) || Megolm message
 *
 * Nothing here is secret or decrypted; the receiver reads the group and session first to pick
 * the inbound session.
 */

import { b64decode, b64encode, concatBytes, utf8decode, utf8encode } from "../protocol/codec";
import { CryptoError, DecryptError } from "./errors";
import { MAX_GROUP_ID_BYTES, MAX_MESSAGE_BYTES } from "./megolm";

export const BODY_VERSION = 0x01;
export const SESSION_ID_LEN = 32;
// A Megolm message: version, index, at least one AES block, 8-byte MAC, signature.
export const MIN_MEGOLM_BYTES = 1 + 2 + 16 + 8 + 64;
export const MAX_BODY_BYTES = 1 + 1 + MAX_GROUP_ID_BYTES + SESSION_ID_LEN + MAX_MESSAGE_BYTES;
const UNSUPPORTED_VERSION = "unsupported_version";

export interface GroupMessage {
  groupId: string;
  sessionId: string; // unpadded base64 of the session's 32-byte Ed25519 key
  ciphertext: Uint8Array; // the raw Megolm message
}

export function encodeGroupMessage(message: GroupMessage): Uint8Array {
  const rawId = utf8encode(message.groupId);
  if (rawId.length < 1 || rawId.length > MAX_GROUP_ID_BYTES || rawId.includes(0)) {
    throw new CryptoError(`group id must be 1..${MAX_GROUP_ID_BYTES} bytes without NUL`);
  }
  let session: Uint8Array;
  try {
    session = b64decode(message.sessionId);
  } catch {
    throw new CryptoError("session id is not base64");
  }
  if (session.length !== SESSION_ID_LEN) {
    throw new CryptoError(`session id must be ${SESSION_ID_LEN} bytes`);
  }
  const n = message.ciphertext.length;
  if (n < MIN_MEGOLM_BYTES || n > MAX_MESSAGE_BYTES) {
    throw new CryptoError(`Megolm message must be ${MIN_MEGOLM_BYTES}..${MAX_MESSAGE_BYTES} bytes`);
  }
  return concatBytes(Uint8Array.of(BODY_VERSION, rawId.length), rawId, session, message.ciphertext);
}

/** Split a kind-2 envelope body; DecryptError for a malformed one, refused unread. */
export function decodeGroupMessage(body: Uint8Array): GroupMessage {
  if (body.length > MAX_BODY_BYTES) {
    throw new DecryptError(`group message body exceeds ${MAX_BODY_BYTES} bytes`);
  }
  if (body.length < 2) throw new DecryptError("group message body is too short");
  if (body[0] !== BODY_VERSION) {
    throw new CryptoError(
      `group message body version ${body[0]} is not supported`,
      UNSUPPORTED_VERSION,
    );
  }
  const idLen = body[1]!;
  if (idLen < 1 || idLen > MAX_GROUP_ID_BYTES) {
    throw new DecryptError(`group id length must be 1..${MAX_GROUP_ID_BYTES}`);
  }
  const start = 2 + idLen;
  const rawId = body.subarray(2, start);
  const session = body.subarray(start, start + SESSION_ID_LEN);
  const ciphertext = body.slice(start + SESSION_ID_LEN);
  if (rawId.length !== idLen || session.length !== SESSION_ID_LEN) {
    throw new DecryptError("group message body is truncated");
  }
  if (ciphertext.length < MIN_MEGOLM_BYTES) {
    throw new DecryptError("group message body holds no Megolm message");
  }
  if (rawId.includes(0)) throw new DecryptError("group id contains NUL");
  let groupId: string;
  try {
    groupId = utf8decode(rawId);
  } catch {
    throw new DecryptError("group id is not valid UTF-8");
  }
  return { groupId, sessionId: b64encode(session), ciphertext };
}
