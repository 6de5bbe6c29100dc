/**
 * Message rows of ./idb (split out of it): a message's body and its rich extra (reactions,
 * replies, attachments; core/rich_extra.ts) are sealed each under their own slot, and an edit or
 * deletion reseals both. The slots are `messages:<key>` and `extra:<key>`.
 */

import { utf8decode, utf8encode } from "../protocol/codec";
import {
  type MessageStatus,
  type MessageUpdate,
  type StoredMessage,
  messageKey,
} from "../core/types";
import { extraFromBytes, extraToBytes, isEmptyExtra } from "../core/rich_extra";
import type { Sealer } from "./sealer";
import type { MessageRecord } from "./rows_schema";

const RANK: Partial<Record<MessageStatus, number>> = { queued: 0, sent: 1, delivered: 2, read: 3 };

export async function sealMessage(sealer: Sealer, m: StoredMessage): Promise<MessageRecord> {
  const key = messageKey(m.peer, m.outgoing, m.clientId);
  const { extra, ...rest } = m;
  const record: MessageRecord = {
    ...rest,
    key,
    body: await sealer.seal(`messages:${key}`, utf8encode(m.body)),
  };
  if (!isEmptyExtra(extra)) record.extra = await sealer.seal(`extra:${key}`, extraToBytes(extra!));
  return record;
}

export async function unsealMessage(sealer: Sealer, r: MessageRecord): Promise<StoredMessage> {
  const { key, body, extra, ...rest } = r;
  const out: StoredMessage = {
    ...rest,
    body: utf8decode(await sealer.open(`messages:${key}`, body)),
  };
  if (extra) out.extra = extraFromBytes(await sealer.open(`extra:${key}`, extra));
  return out;
}

export async function sealUpdate(sealer: Sealer, u: MessageUpdate) {
  const key = messageKey(u.peer, u.outgoing, u.clientId);
  return {
    key,
    body: await sealer.seal(`messages:${key}`, utf8encode(u.body)),
    extra: isEmptyExtra(u.extra) ? null : await sealer.seal(`extra:${key}`, extraToBytes(u.extra!)),
    edited: u.edited,
    deleted: u.deleted,
  };
}

export function byTime(a: MessageRecord, b: MessageRecord): number {
  return (a.serverTs || a.ts) - (b.serverTs || b.ts) || a.ts - b.ts;
}

/** Whether a status change applies: a message's status only moves forward. */
export function moves(from: MessageStatus, to: MessageStatus): boolean {
  if (to === "failed" || from === "received") return true;
  const a = RANK[from];
  const b = RANK[to];
  return a === undefined || b === undefined || b > a; // never back from read to delivered
}
