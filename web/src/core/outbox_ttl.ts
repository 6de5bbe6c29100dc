/**
 * Disappearing items in the outbox (mirrors the SDK's OutboxItem.ttl_left, outbox_store.py,
 * and Outbox._expire; docs/protocol.md, spec §7): an item waits here with the conversation's
 * timer as its ttl; the frame carries the time it has left, and one whose time ran out
 * before it left is failed with code `expired` instead of sent.
 */

import type { OutboxItem } from "./types";

export const EXPIRED =
  "the message disappeared before it could be sent (its disappearing-message timer ran out " +
  "while it waited to go); send it again if it is still wanted"; // as outbox_items.py

/** The seconds the server may still keep a disappearing item: its ttl less the time it waited
 * here, rounded up, never above the ttl; 0 once it ran out; undefined without a ttl
 * (OutboxItem.ttl_left in outbox_store.py, spec §7). */
export function ttlLeft(item: OutboxItem, now: number): number | undefined {
  if (item.ttl === undefined) return undefined;
  const leftMs = item.createdAt + item.ttl * 1000 - now;
  return Math.min(item.ttl, Math.max(0, Math.ceil(leftMs / 1000)));
}
