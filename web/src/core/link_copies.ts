/**
 * Sent copies for one's own other devices (spec D; docs/protocol.md, "Sent copies"), the send
 * side; mirrors src/porch/client/core/outbox_items.py. What the user wrote (a text, reaction,
 * edit, delete or timer) and read receipts go, in the same `send` frame, to the recipient and,
 * wrapped as `sent`, to this account's other devices: so the terminal shows what the browser
 * sent, and a message read here is read there. Typing is ephemeral; delivered receipts and
 * retries are per device: none of them is copied. (The receive side is handlers.ts's
 * sentHandler.)
 */

import { type Sent, decodeContent, encodeContent } from "../crypto/content";
import { RICH_KINDS } from "../crypto/rich";
import type { CoreState } from "./context";
import type { OutboxItem } from "./types";

const USER_KINDS: ReadonlySet<string> = new Set(["text", ...RICH_KINDS]);

/** Whether the content is something the user wrote (a text or a rich action): what a changed
 * key of a verified contact holds back (./outbox_paused), as outbox_items.is_text. */
export function isUserContent(content: Uint8Array): boolean {
  try {
    return USER_KINDS.has(decodeContent(content).t);
  } catch {
    return false;
  }
}

/** The inner content one's other devices get a copy of, or null (never copied, or unreadable). */
export function copied(content: Uint8Array): Sent["content"] | null {
  let decoded;
  try {
    decoded = decodeContent(content);
  } catch {
    return null;
  }
  if (USER_KINDS.has(decoded.t)) return decoded as Sent["content"];
  if (decoded.t === "receipt" && decoded.kind === "read") return decoded;
  return null;
}

/** The accounts a 1:1 item goes to, recipient first: and one's own, for what is copied. */
export function destinationsFor(state: CoreState, item: OutboxItem): string[] {
  const accounts = [item.recipient];
  if (item.recipient !== state.accountId && copied(item.content) !== null)
    accounts.push(state.accountId);
  return accounts;
}

/** Whether `account` is one's own: its copy is a courtesy (for an item to someone else, and
 * for a note to self), so the item goes without it when its keys cannot be had. */
export function isOwnCopy(state: CoreState, _item: OutboxItem, account: string): boolean {
  return account === state.accountId;
}

/** The `sent` content for one's own other devices, or null when the item is not copied. A note
 * to self goes to them as a copy too (`to` is this account), so it shows as outgoing there. */
export function sentCopy(_state: CoreState, item: OutboxItem): Uint8Array | null {
  const inner = copied(item.content);
  if (inner === null) return null;
  return encodeContent({ t: "sent", to: item.recipient, content: inner });
}
