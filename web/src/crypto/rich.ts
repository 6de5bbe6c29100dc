/**
 * Rich message contents: attachment pointers, reply quotes, reactions, edits, deletes and
 * disappearing-message timers (docs/protocol.md, "Content object"); mirrors
 * src/porch/crypto/rich.py. Pure data and validation; decoding validates exactly what encoding
 * emits, so decode(encode(x)) equals x and a malformed object fails as one ContentError.
 */

import { b64encode } from "../protocol/codec";
import { DIGEST_BYTES, KEY_BYTES } from "./attachment";
import {
  MAX_SAFE_INTEGER,
  checkBool,
  checkInt,
  checkStr,
  checkTs,
  fail,
  utf8Length,
  validateAccount,
  validateB64,
  validateBody,
  validateGroupId,
  validateId,
} from "./content_checks";

export const MAX_ATTACHMENTS = 10;
export const MAX_CONTENT_TYPE_CHARS = 128;
export const MAX_NAME_BYTES = 255;
export const MAX_DIMENSION = 65535;
export const MAX_THUMBNAIL_BYTES = 16384;
export const MAX_BLURHASH_CHARS = 100;
export const MAX_QUOTE_CHARS = 200;
export const MAX_EMOJI_BYTES = 32;
export const MAX_TIMER_SECONDS = 31_536_000;
export const DELETE_WINDOW_MS = 48 * 3600 * 1000;

export const MEDIA_ID = /^[A-Za-z0-9_-]{22}$/;
// RFC 6838 restricted names, type "/" subtype, no parameters.
const CONTENT_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$/;
const BLURHASH = /^[0-9A-Za-z#$%*+,\-.:;=?@[\]^_{|}~]{6,100}$/;

/** A pointer to an encrypted blob: media id, 64-byte key, blob digest, plaintext size. */
export interface Attachment {
  id: string;
  key: Uint8Array;
  digest: Uint8Array;
  size: number;
  contentType: string;
  name?: string;
  width?: number;
  height?: number;
  durationMs?: number;
  thumbnail?: Uint8Array;
  blurhash?: string;
  voice?: boolean;
}

export interface Quote {
  id: string;
  author: string;
  body: string;
}

export interface Reaction {
  t: "reaction";
  id: string;
  author: string;
  emoji: string; // "" removes the reactor's reaction
  ts: number;
  group?: string;
}

export interface Edit {
  t: "edit";
  id: string;
  body: string;
  ts: number;
  group?: string;
}

export interface Delete {
  t: "delete";
  id: string;
  ts: number;
  group?: string;
}

export interface Timer {
  t: "timer";
  seconds: number; // 0 turns the timer off
  ts: number;
}

export type RichKind = Reaction | Edit | Delete | Timer;
export const RICH_KINDS = ["reaction", "edit", "delete", "timer"] as const;

/** The optional fields a text gained in issue 8; absent leaves the wire unchanged. */
export interface TextExtras {
  attachments?: readonly Attachment[];
  reply?: Quote;
  forwarded?: boolean;
  expires?: number; // seconds: the message expires at ts + exp * 1000
}

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Python's dict.get(key, default): an explicit null stays null (and is refused). */
function get(obj: Obj, key: string, fallback: unknown): unknown {
  return key in obj ? obj[key] : fallback;
}

function bytesB64(value: unknown, what: string): string {
  if (!(value instanceof Uint8Array)) fail(`${what} must be bytes`);
  return b64encode(value);
}

function optional(obj: Obj, key: string, value: unknown): void {
  if (value !== undefined) obj[key] = value;
}

export function attachmentToObj(att: Attachment): Obj {
  const obj: Obj = {
    id: att.id,
    key: bytesB64(att.key, "attachment key"),
    digest: bytesB64(att.digest, "attachment digest"),
    size: att.size,
    type: att.contentType,
  };
  optional(obj, "name", att.name);
  optional(obj, "w", att.width);
  optional(obj, "h", att.height);
  optional(obj, "duration", att.durationMs);
  if (att.thumbnail !== undefined) obj.thumb = bytesB64(att.thumbnail, "attachment thumbnail");
  optional(obj, "blurhash", att.blurhash);
  if (att.voice === true) obj.voice = true;
  attachmentFromObj(obj); // one set of rules for both directions
  return obj;
}

function checkName(value: unknown): string {
  if (typeof value !== "string") fail("attachment name must be a string");
  checkStr(value, "attachment name");
  // A receiver may save the file under this name: no path separators, NUL, "." or "..".
  if (["", ".", ".."].includes(value) || /[/\\\0]/.test(value)) {
    fail("attachment name must be a plain file name (no / \\ or NUL)");
  }
  if (utf8Length(value) > MAX_NAME_BYTES) fail(`attachment name exceeds ${MAX_NAME_BYTES} bytes`);
  return value;
}

function checkContentType(value: unknown): string {
  if (
    typeof value !== "string" ||
    value.length > MAX_CONTENT_TYPE_CHARS ||
    !CONTENT_TYPE.test(value)
  ) {
    fail(`attachment type must be type/subtype of at most ${MAX_CONTENT_TYPE_CHARS} chars`);
  }
  return value;
}

function maybeInt(obj: Obj, key: string, what: string, low: number, high: number) {
  const value = obj[key];
  return value === undefined || value === null ? undefined : checkInt(value, what, low, high);
}

/** Copy the keys whose value is defined (exactOptionalPropertyTypes: absent, not undefined). */
function defined<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

export function attachmentFromObj(obj: unknown): Attachment {
  if (!isObj(obj)) fail("an attachment must be an object");
  const mediaId = obj.id;
  if (typeof mediaId !== "string" || !MEDIA_ID.test(mediaId)) {
    fail("attachment id must be 22 base64url characters");
  }
  const key = validateB64(obj.key, "attachment key", KEY_BYTES, 88);
  const digest = validateB64(obj.digest, "attachment digest", DIGEST_BYTES, 44);
  let thumbnail: Uint8Array | undefined;
  if (obj.thumb !== undefined && obj.thumb !== null) {
    thumbnail = validateB64(obj.thumb, "attachment thumbnail", null, 21848);
    if (thumbnail.length > MAX_THUMBNAIL_BYTES) {
      fail(`attachment thumbnail exceeds ${MAX_THUMBNAIL_BYTES} bytes`);
    }
  }
  const blurhash = obj.blurhash ?? undefined;
  if (blurhash !== undefined && (typeof blurhash !== "string" || !BLURHASH.test(blurhash))) {
    fail(`attachment blurhash must be 6..${MAX_BLURHASH_CHARS} blurhash characters`);
  }
  const name = obj.name ?? undefined;
  const voice = checkBool(get(obj, "voice", false), "attachment voice");
  return defined<Attachment>({
    id: mediaId,
    key,
    digest,
    size: checkTs(obj.size, "attachment size"),
    contentType: checkContentType(obj.type),
    name: name === undefined ? undefined : checkName(name),
    width: maybeInt(obj, "w", "attachment width", 1, MAX_DIMENSION),
    height: maybeInt(obj, "h", "attachment height", 1, MAX_DIMENSION),
    durationMs: maybeInt(obj, "duration", "attachment duration", 0, MAX_SAFE_INTEGER),
    thumbnail,
    blurhash: blurhash as string | undefined,
    voice: voice ? true : undefined,
  } as Attachment);
}

export function quoteToObj(quote: Quote): Obj {
  const obj = { id: quote.id, author: quote.author, body: quote.body };
  quoteFromObj(obj);
  return obj;
}

export function quoteFromObj(obj: unknown): Quote {
  if (!isObj(obj)) fail("a reply quote must be an object");
  const body = get(obj, "body", "");
  // Python's len() counts code points, so count them here too (not UTF-16 units).
  if (typeof body !== "string" || [...body].length > MAX_QUOTE_CHARS) {
    fail(`a reply quote's body must be a string of at most ${MAX_QUOTE_CHARS} characters`);
  }
  return {
    id: validateId(obj.id, "reply id"),
    author: validateAccount(obj.author, "reply author"),
    body: checkStr(body, "reply body"),
  };
}

/** The wire fields for a text's extras; empty when every extra has its default. */
export function textExtrasToObj(extras: TextExtras): Obj {
  const obj: Obj = {};
  if (extras.attachments !== undefined && extras.attachments.length > 0) {
    obj.att = extras.attachments.map(attachmentToObj);
  }
  if (extras.reply !== undefined) obj.reply = quoteToObj(extras.reply);
  if (extras.forwarded === true) obj.fwd = true;
  optional(obj, "exp", extras.expires);
  textExtrasFromObj(obj);
  return obj;
}

export function textExtrasFromObj(obj: Obj): TextExtras {
  const att = obj.att ?? undefined;
  let attachments: Attachment[] | undefined;
  if (att !== undefined) {
    if (!Array.isArray(att) || att.length < 1 || att.length > MAX_ATTACHMENTS) {
      fail(`text attachments must be a list of 1..${MAX_ATTACHMENTS}`);
    }
    attachments = att.map(attachmentFromObj);
  }
  const reply = obj.reply ?? undefined;
  const expires = obj.exp ?? undefined;
  const forwarded = checkBool(get(obj, "fwd", false), "text fwd");
  return defined<TextExtras>({
    attachments,
    reply: reply === undefined ? undefined : quoteFromObj(reply),
    forwarded: forwarded ? true : undefined,
    expires:
      expires === undefined ? undefined : checkInt(expires, "text exp", 1, MAX_TIMER_SECONDS),
  } as TextExtras);
}

function withGroup(obj: Obj, group: string | undefined): Obj {
  if (group !== undefined) obj.group = group;
  return obj;
}

/** The wire object (without "v") of a reaction, edit, delete or timer. */
export function richToObj(content: RichKind): Obj {
  let obj: Obj;
  switch (content.t) {
    case "reaction":
      obj = { t: "reaction", id: content.id, author: content.author };
      obj.emoji = content.emoji;
      obj.ts = content.ts;
      withGroup(obj, content.group);
      break;
    case "edit":
      obj = withGroup(
        { t: "edit", id: content.id, body: content.body, ts: content.ts },
        content.group,
      );
      break;
    case "delete":
      obj = withGroup({ t: "delete", id: content.id, ts: content.ts }, content.group);
      break;
    case "timer":
      obj = { t: "timer", seconds: content.seconds, ts: content.ts };
      break;
    default:
      fail(`cannot encode ${(content as { t: unknown }).t}`);
  }
  richFromObj(content.t, obj);
  return obj;
}

function group(obj: Obj): string | undefined {
  const value = obj.group ?? undefined;
  return value === undefined ? undefined : validateGroupId(value);
}

/** Parse a reaction, edit, delete or timer object; `kind` is one of RICH_KINDS. */
export function richFromObj(kind: string, obj: Obj): RichKind {
  if (kind === "timer") {
    const seconds = checkInt(obj.seconds, "timer seconds", 0, MAX_TIMER_SECONDS);
    return { t: "timer", seconds, ts: checkTs(obj.ts, "timer ts") };
  }
  const id = validateId(obj.id, `${kind} id`);
  const ts = checkTs(obj.ts, `${kind} ts`);
  if (kind === "reaction") {
    const emoji = obj.emoji;
    if (typeof emoji !== "string" || utf8Length(checkStr(emoji, "emoji")) > MAX_EMOJI_BYTES) {
      fail(`reaction emoji must be a string of at most ${MAX_EMOJI_BYTES} bytes`);
    }
    const author = validateAccount(obj.author, "reaction author");
    return defined<Reaction>({
      t: "reaction",
      id,
      author,
      emoji,
      ts,
      group: group(obj),
    } as Reaction);
  }
  if (kind === "edit") {
    const body = validateBody(obj.body, "edit body");
    return defined<Edit>({ t: "edit", id, body, ts, group: group(obj) } as Edit);
  }
  if (kind === "delete")
    return defined<Delete>({ t: "delete", id, ts, group: group(obj) } as Delete);
  fail(`unknown rich content kind '${kind}'`);
}
