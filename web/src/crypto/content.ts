/**
 * The plaintext carried inside every Olm and Megolm message (docs/protocol.md, section 8
 * "Message content"); mirrors src/porch/crypto/content.py.
 *
 * A content is a JSON object (UTF-8, compact, keys sorted) with "v": 1 and a kind "t", padded
 * so the ciphertext length reveals only a 160-byte bucket. JSON.stringify writes the same bytes
 * as Python's json.dumps(ensure_ascii=False, separators=(",", ":"), sort_keys=True): both
 * escape only '"', '\\' and control characters (\b \f \n \r \t by name, others as \u00XX in
 * lower-case hex), so sorting the keys is all that is left to do (tests/vectors/crypto.json
 * "content" and "rich_content" hold the exact bytes). Receivers ignore unknown fields and
 * surface unknown kinds as Unknown.
 */

import { utf8decode, utf8encode } from "../protocol/codec";
import {
  type GroupAction,
  checkInt,
  checkStr,
  checkTs,
  fail,
  validateAccount,
  validateBody,
  validateGroupId,
  validateGroupKey,
  validateGroupStateKey,
  validateGroupUpdate,
  validateId,
} from "./content_checks";
import { ContentError } from "./errors";
import {
  RICH_KINDS,
  type RichKind,
  type TextExtras,
  richFromObj,
  richToObj,
  textExtrasFromObj,
  textExtrasToObj,
} from "./rich";

export const VERSION = 1;
export const PAD_BLOCK = 160;
export const MAX_DEVICE_ID = 2 ** 31 - 1;

export interface Text extends TextExtras {
  t: "text";
  id: string;
  body: string;
  ts: number;
  group?: string; // set when the text travels in Megolm
}

export interface Receipt {
  t: "receipt";
  kind: "delivered" | "read";
  ids: readonly string[];
}

export interface Typing {
  t: "typing";
  state: "started" | "stopped";
}

/** "Resend the message you sent me" (Signal's DecryptionErrorMessage). */
export interface Retry {
  t: "retry";
  ts: number;
  device: number;
  id?: string;
}

/** A Megolm session shared with one member device over Olm (Matrix's m.room_key). */
export interface GroupKey {
  t: "group_key";
  group: string;
  session: string;
  key: string;
  sig: string;
}

export interface GroupStateKey {
  t: "group_state_key";
  group: string;
  epoch: number;
  key: string;
}

export interface GroupUpdate {
  t: "group_update";
  group: string;
  revision: number;
  action: GroupAction;
  targets: readonly string[];
}

/** A copy, for the sender's own other devices, of a content it sent `to` an account. */
export interface Sent {
  t: "sent";
  to: string;
  content: Text | Receipt | RichKind;
}

/** A well-formed v1 content of a kind this client does not know; `raw` is the object. */
export interface Unknown {
  t: "unknown";
  kind: string;
  raw: Record<string, unknown>;
}

export type Encodable =
  Text | Receipt | Typing | Retry | GroupKey | GroupStateKey | GroupUpdate | Sent | RichKind;
export type Content = Encodable | Unknown;

const RECEIPT_KINDS = ["delivered", "read"];
const TYPING_STATES = ["started", "stopped"];
const SENT_KINDS = ["text", "receipt", ...RICH_KINDS];

type Obj = Record<string, unknown>;

/** ISO/IEC 7816-4 padding to a multiple of PAD_BLOCK: a 0x80 marker, then zeros. */
export function pad(data: Uint8Array): Uint8Array {
  const marked = data.length + 1;
  const out = new Uint8Array(marked + ((PAD_BLOCK - (marked % PAD_BLOCK)) % PAD_BLOCK));
  out.set(data);
  out[data.length] = 0x80;
  return out;
}

/** Inverse of pad; the padded length need not be a multiple of PAD_BLOCK (as in Python). */
export function unpad(data: Uint8Array): Uint8Array {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  if (end === 0 || data[end - 1] !== 0x80) throw new ContentError("missing padding marker");
  return data.slice(0, end - 1);
}

/** JSON with keys sorted at every depth (arrays keep their order). */
function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return v;
    const sorted: Obj = {};
    // Keys are ASCII field names, where UTF-16 order is code point order as in Python.
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Obj)[k];
    return sorted;
  });
}

/** The exact JSON bytes (before padding) of a content; ContentError if it is invalid. */
export function contentToJson(content: Encodable): Uint8Array {
  return utf8encode(sortedJson(toObj(content)));
}

function toObj(content: Encodable): Obj {
  switch (content.t) {
    case "sent": {
      validateAccount(content.to, "sent 'to'");
      if (!SENT_KINDS.includes(content.content.t)) {
        fail("a sent copy holds a text, receipt, reaction, edit, delete or timer");
      }
      return { v: VERSION, t: "sent", to: content.to, c: toObj(content.content) };
    }
    case "text": {
      validateText(content.id, content.body, content.ts);
      const obj: Obj = {
        v: VERSION,
        t: "text",
        id: content.id,
        body: content.body,
        ts: content.ts,
      };
      if (content.group !== undefined) obj.group = validateGroupId(content.group);
      return Object.assign(obj, textExtrasToObj(content));
    }
    case "reaction":
    case "edit":
    case "delete":
    case "timer":
      return { v: VERSION, ...richToObj(content) };
    case "receipt":
      validateReceipt(content.kind, content.ids);
      return { v: VERSION, t: "receipt", kind: content.kind, ids: [...content.ids] };
    case "typing":
      if (!TYPING_STATES.includes(content.state)) {
        fail(`typing state must be one of ${TYPING_STATES.join(", ")}`);
      }
      return { v: VERSION, t: "typing", state: content.state };
    case "retry": {
      validateRetry(content.ts, content.device, content.id);
      const obj: Obj = { v: VERSION, t: "retry", ts: content.ts, device: content.device };
      if (content.id !== undefined) obj.id = content.id;
      return obj;
    }
    case "group_key": {
      const { group, session, key, sig } = content;
      validateGroupKey(group, session, key, sig);
      return { v: VERSION, t: "group_key", group, session, key, sig };
    }
    case "group_state_key": {
      const { group, epoch, key } = content;
      validateGroupStateKey(group, epoch, key);
      return { v: VERSION, t: "group_state_key", group, epoch, key };
    }
    case "group_update": {
      const { group, revision, action } = content;
      const targets = [...content.targets];
      validateGroupUpdate(group, revision, action, targets);
      return { v: VERSION, t: "group_update", group, revision, action, targets };
    }
    default:
      fail(`cannot encode ${(content as { t: unknown }).t}`);
  }
}

/** Serialise and pad a content, ready to hand to Olm or Megolm. */
export function encodeContent(content: Encodable): Uint8Array {
  return pad(contentToJson(content));
}

function validateText(id: unknown, body: unknown, ts: unknown): void {
  validateId(id, "text id");
  validateBody(body, "text body");
  checkTs(ts, "text ts");
}

function validateReceipt(kind: unknown, ids: unknown): void {
  if (!RECEIPT_KINDS.includes(kind as string)) {
    fail(`receipt kind must be one of ${RECEIPT_KINDS.join(", ")}`);
  }
  if (!Array.isArray(ids) || ids.length === 0) fail("receipt ids must be a non-empty list");
  for (const item of ids) validateId(item, "receipt id");
}

function validateRetry(ts: unknown, device: unknown, id: unknown): void {
  checkTs(ts, "retry ts");
  checkInt(device, "retry device", 1, MAX_DEVICE_ID, "2**31-1");
  if (id !== undefined && id !== null) validateId(id, "retry id");
}

/** Unpad and parse a decrypted content; ContentError on anything malformed. */
export function decodeContent(data: Uint8Array): Content {
  const raw = unpad(data);
  let text: string;
  try {
    text = utf8decode(raw);
  } catch {
    throw new ContentError("content is not valid UTF-8");
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    throw new ContentError("content is not valid JSON");
  }
  return fromObj(obj, false);
}

function isObj(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optionalGroup(obj: Obj): string | undefined {
  const group = obj.group ?? undefined;
  return group === undefined ? undefined : validateGroupId(group);
}

function fromObj(obj: unknown, nested: boolean): Content {
  if (!isObj(obj)) fail("content must be a JSON object");
  if (obj.v !== VERSION) fail(`unsupported content version ${JSON.stringify(obj.v) ?? "None"}`);
  const kind = obj.t;
  if (typeof kind !== "string") fail("content kind 't' must be a string");
  switch (kind) {
    case "sent": {
      if (nested) fail("a sent copy cannot hold another");
      const to = validateAccount(obj.to, "sent 'to'");
      const inner = fromObj(obj.c, true);
      if (!SENT_KINDS.includes(inner.t)) {
        fail("a sent copy holds a text, receipt, reaction, edit, delete or timer");
      }
      return { t: "sent", to, content: inner as Sent["content"] };
    }
    case "text": {
      validateText(obj.id, obj.body, obj.ts);
      const text: Text = {
        t: "text",
        id: obj.id as string,
        body: obj.body as string,
        ts: obj.ts as number,
      };
      const group = optionalGroup(obj);
      if (group !== undefined) text.group = group;
      return Object.assign(text, textExtrasFromObj(obj));
    }
    case "reaction":
    case "edit":
    case "delete":
    case "timer":
      return richFromObj(kind, obj);
    case "receipt":
      validateReceipt(obj.kind, obj.ids);
      return { t: "receipt", kind: obj.kind as Receipt["kind"], ids: [...(obj.ids as string[])] };
    case "typing":
      if (!TYPING_STATES.includes(obj.state as string)) {
        fail(`typing state must be one of ${TYPING_STATES.join(", ")}`);
      }
      return { t: "typing", state: obj.state as Typing["state"] };
    case "retry": {
      validateRetry(obj.ts, obj.device, obj.id);
      const retry: Retry = { t: "retry", ts: obj.ts as number, device: obj.device as number };
      if (obj.id !== undefined && obj.id !== null) retry.id = obj.id as string;
      return retry;
    }
    case "group_key":
      validateGroupKey(obj.group, obj.session, obj.key, obj.sig);
      return {
        t: "group_key",
        group: obj.group as string,
        session: obj.session as string,
        key: obj.key as string,
        sig: obj.sig as string,
      };
    case "group_state_key":
      validateGroupStateKey(obj.group, obj.epoch, obj.key);
      return {
        t: "group_state_key",
        group: obj.group as string,
        epoch: obj.epoch as number,
        key: obj.key as string,
      };
    case "group_update":
      validateGroupUpdate(obj.group, obj.revision, obj.action, obj.targets);
      return {
        t: "group_update",
        group: obj.group as string,
        revision: obj.revision as number,
        action: obj.action as GroupAction,
        targets: [...(obj.targets as string[])],
      };
    default:
      return { t: "unknown", kind: checkStr(kind, "content kind"), raw: obj };
  }
}
