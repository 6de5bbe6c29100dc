/**
 * Field checks shared by every content kind (docs/protocol.md, "Content object"); mirrors
 * src/porch/crypto/content_checks.py, with the same bounds and the same messages, so a content
 * one client refuses the other refuses too. Each check throws ContentError (`bad_content`).
 */

import { b64decode } from "../protocol/codec";
import { ContentError } from "./errors";

// Timestamps and sizes must survive a JavaScript number: the reason for this bound.
export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER; // 2**53 - 1
export const MAX_GROUP_ID_BYTES = 128;
export const MAX_TEXT_BYTES = 64 * 1024;
export const MAX_EPOCH = 2 ** 32 - 1;
// A vodozemac SessionKey (v2) is 229 bytes: 306 characters of unpadded base64.
export const MAX_SESSION_KEY_CHARS = 512;
export const GROUP_ACTIONS = [
  "create",
  "add",
  "remove",
  "leave",
  "promote",
  "demote",
  "join",
  "state",
  "settings",
] as const;
export type GroupAction = (typeof GROUP_ACTIONS)[number];
export const MAX_GROUP_UPDATE_TARGETS = 1000;

const ACCOUNT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const encoder = new TextEncoder();

export function fail(message: string): never {
  throw new ContentError(message);
}

export function utf8Length(value: string): number {
  return encoder.encode(value).length;
}

/** A string that UTF-8 can carry: lone surrogates cannot be encoded, so never sent on. */
export function checkStr(value: string, what: string): string {
  if (LONE_SURROGATE.test(value)) fail(`${what} is not valid Unicode`);
  return value;
}

/**
 * An exact integer in low..high. JSON.parse makes 1.0 the number 1, which Python keeps as a
 * float and refuses: the one place the two decoders differ (see docs/design.md).
 */
export function checkInt(
  value: unknown,
  what: string,
  low: number,
  high: number,
  bound?: string,
): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < low || value > high) {
    fail(`${what} must be an integer in ${low}..${bound ?? high}`);
  }
  return value;
}

export function checkTs(value: unknown, what: string): number {
  return checkInt(value, what, 0, MAX_SAFE_INTEGER, "2**53-1");
}

export function checkBool(value: unknown, what: string): boolean {
  if (typeof value !== "boolean") fail(`${what} must be true or false`);
  return value;
}

export function validateId(value: unknown, what: string): string {
  if (typeof value !== "string" || value === "") fail(`${what} must be a non-empty string`);
  return checkStr(value, what);
}

export function validateBody(value: unknown, what: string): string {
  if (typeof value !== "string") fail(`${what} must be a string`);
  checkStr(value, what);
  if (utf8Length(value) > MAX_TEXT_BYTES) fail(`${what} exceeds ${MAX_TEXT_BYTES} bytes`);
  return value;
}

export function validateAccount(value: unknown, what: string): string {
  if (typeof value !== "string" || !ACCOUNT_ID.test(value)) fail(`${what} must be an account id`);
  return value;
}

export function validateGroupId(value: unknown): string {
  const group = validateId(value, "group id");
  if (utf8Length(group) > MAX_GROUP_ID_BYTES || group.includes("\0")) {
    fail(`group id must be at most ${MAX_GROUP_ID_BYTES} bytes without NUL`);
  }
  return group;
}

export function validateB64(
  value: unknown,
  what: string,
  size: number | null,
  maxChars: number,
): Uint8Array {
  if (typeof value !== "string" || value === "" || value.length > maxChars) {
    fail(`${what} must be a base64 string of at most ${maxChars} characters`);
  }
  let raw: Uint8Array;
  try {
    raw = b64decode(value);
  } catch {
    fail(`${what} is not base64`);
  }
  if (size !== null && raw.length !== size) fail(`${what} must encode ${size} bytes`);
  return raw;
}

// Group kinds (docs/protocol.md, "Group key content" and "Group updates") ------------------

export function validateGroupKey(group: unknown, session: unknown, key: unknown, sig: unknown) {
  validateGroupId(group);
  validateB64(session, "group_key session", 32, 44);
  validateB64(key, "group_key key", null, MAX_SESSION_KEY_CHARS);
  validateB64(sig, "group_key sig", 64, 88);
}

export function validateGroupStateKey(group: unknown, epoch: unknown, key: unknown) {
  validateGroupId(group);
  checkInt(epoch, "group_state_key epoch", 0, MAX_EPOCH, "2**32-1");
  validateB64(key, "group_state_key key", 32, 44);
}

export function validateGroupUpdate(
  group: unknown,
  revision: unknown,
  action: unknown,
  targets: unknown,
) {
  validateGroupId(group);
  checkTs(revision, "group_update revision");
  if (!(GROUP_ACTIONS as readonly unknown[]).includes(action)) {
    fail(`group_update action must be one of ${GROUP_ACTIONS.join(", ")}`);
  }
  if (!Array.isArray(targets) || targets.length > MAX_GROUP_UPDATE_TARGETS) {
    fail(`group_update targets must be a list of at most ${MAX_GROUP_UPDATE_TARGETS}`);
  }
  for (const target of targets) validateAccount(target, "group_update target");
  if (new Set(targets).size !== targets.length) fail("group_update targets must not repeat");
}
