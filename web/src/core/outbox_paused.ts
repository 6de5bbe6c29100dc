/**
 * Texts to a verified contact whose key changed wait (mirrors pause_if_unaccepted in
 * src/porch/client/core/outbox_items.py and resume in porch.client.verified; docs/design.md,
 * "Verified contacts"; docs/security.md, "Key verification and identity changes"). What the
 * user wrote (a text, reaction, edit, delete or timer) is not encrypted to the new key: the
 * store moves it to the outbox's paused state, where it is neither sent nor retried nor
 * counted as pending, until the user verifies the new safety number or accepts it; then the
 * held items are queued again in their old order. Receipts and retry requests carry no user
 * content and still go (core/retry.ts). A group item never pauses (its recipient is a group,
 * never a verified contact), as in the SDK.
 */

import { type Action, emit, wake } from "./actions";
import type { CoreState } from "./context";
import { groupOf } from "./group_send";
import { isUserContent } from "./link_copies";
import type { OutboxItem, Writes } from "./types";
import { IDENTITY_CHANGED, verification } from "./verified";

export const SEND_PAUSED = "send_paused"; // SendSettled's error code (porch.client.errors)

/** Pause `item` if its recipient is a verified contact whose key changed; [] to go on. */
export async function pauseIfUnaccepted(state: CoreState, item: OutboxItem): Promise<Action[]> {
  if (groupOf(item.recipient) !== null || !isUserContent(item.content)) return [];
  const contact = await state.store.contact(item.recipient);
  if (verification(contact) !== "verified_key_changed") return [];
  const reason =
    `${contact!.label}'s safety number changed since you verified it; the message waits ` +
    "until you compare the new one and mark it verified, or accept it";
  await state.store.commit({
    pause: [{ clientId: item.clientId, code: IDENTITY_CHANGED, reason }],
  });
  return [
    { type: "SendSettled", clientId: item.clientId, ts: 0, error: SEND_PAUSED },
    emit({ type: "SendPausedEvent", id: item.clientId, recipient: item.recipient }),
  ];
}

/** Commit `writes` (the contact marked verified, or its new key accepted) with `accountId`'s
 * paused items queued again, in one transaction; a wake when there were any (Client._resume). */
export async function resumePaused(
  state: CoreState,
  accountId: string,
  writes: Writes,
): Promise<Action[]> {
  const held = (await state.store.pausedIds(accountId)).length;
  await state.store.commit({ ...writes, resume: [accountId] });
  return held ? [wake()] : [];
}

/** `accountId`'s paused items, queued again if the contact is no longer "key changed": the
 * user verified or accepted it in another tab while this one paused a text (each tab's core
 * calls run one at a time, but two tabs' do not). */
export async function resumeIfAccepted(state: CoreState, accountId: string): Promise<Action[]> {
  if (verification(await state.store.contact(accountId)) === "verified_key_changed") return [];
  if (!(await state.store.pausedIds(accountId)).length) return [];
  return resumePaused(state, accountId, {});
}
