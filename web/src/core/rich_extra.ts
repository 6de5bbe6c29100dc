/**
 * A message row's extras as bytes, for sealing at rest (store/idb.ts), and back; mirrors the
 * `extra` column of src/porch/client/history.py. Attachment pointers and quotes go through
 * the wire codec of crypto/rich.ts, so a row read back is validated as a received one is.
 */

import { utf8decode, utf8encode } from "../protocol/codec";
import { attachmentFromObj, attachmentToObj, quoteFromObj, quoteToObj } from "../crypto/rich";
import { noticeFromObj } from "./group_notices";
import type { MessageExtra } from "./types";

type Obj = Record<string, unknown>;

export function extraToBytes(extra: MessageExtra): Uint8Array {
  const obj: Obj = {};
  if (extra.attachments?.length) obj.att = extra.attachments.map(attachmentToObj);
  if (extra.reply) obj.reply = quoteToObj(extra.reply);
  if (extra.forwarded) obj.fwd = true;
  if (extra.edits?.length) obj.edits = extra.edits;
  if (extra.bodyTs !== undefined) obj.bodyTs = extra.bodyTs;
  if (extra.reactions && Object.keys(extra.reactions).length) obj.reactions = extra.reactions;
  if (extra.to?.length) obj.to = extra.to; // one's own group text (core/group_live.ts)
  if (extra.receipts && Object.keys(extra.receipts).length) obj.rcpt = extra.receipts;
  if (extra.notice) obj.notice = extra.notice;
  return utf8encode(JSON.stringify(obj));
}

export function extraFromBytes(data: Uint8Array): MessageExtra {
  const obj = JSON.parse(utf8decode(data)) as Obj;
  const extra: MessageExtra = {};
  if (Array.isArray(obj.att)) extra.attachments = obj.att.map(attachmentFromObj);
  if (obj.reply !== undefined) extra.reply = quoteFromObj(obj.reply);
  if (obj.fwd === true) extra.forwarded = true;
  if (Array.isArray(obj.edits)) extra.edits = obj.edits as Array<[number, string]>;
  if (typeof obj.bodyTs === "number") extra.bodyTs = obj.bodyTs;
  if (obj.reactions && typeof obj.reactions === "object")
    extra.reactions = obj.reactions as NonNullable<MessageExtra["reactions"]>;
  if (Array.isArray(obj.to)) extra.to = obj.to.filter((a) => typeof a === "string");
  if (obj.rcpt && typeof obj.rcpt === "object")
    extra.receipts = obj.rcpt as NonNullable<MessageExtra["receipts"]>;
  const notice = noticeFromObj(obj.notice);
  if (notice) extra.notice = notice;
  return extra;
}

export function isEmptyExtra(extra: MessageExtra | null | undefined): boolean {
  return !extra || extraToBytes(extra).length <= 2;
}
