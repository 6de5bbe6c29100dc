/**
 * Sending rich messages from the browser: texts with a reply quote or attachment pointers,
 * reactions, edits, deletes and the 1:1 timer (mirrors src/porch/client/rich.py and
 * outgoing.py). One's own action is applied to one's own history at once through the same
 * rules the receivers apply (core/rich.ts), in the commit that queues it durably.
 */

import { encodeContent, type Text } from "../crypto/content";
import {
  type Attachment,
  DELETE_WINDOW_MS,
  MAX_EMOJI_BYTES,
  MAX_QUOTE_CHARS,
  MAX_TIMER_SECONDS,
  type Quote,
} from "../crypto/rich";
import { utf8encode } from "../protocol/codec";
import type { Action } from "./actions";
import { type CoreState, randomId } from "./context";
import { ClientError } from "./errors";
import { groupOf } from "./group_send";
import { othersOf } from "./group_live";
import type { Event } from "./events";
import { MAX_EDITS, type RichAction, applyRich, describeSeconds, withinWindow } from "./rich";
import { storedText } from "./rich";
import type { StoredMessage, Writes } from "./types";

export const MAX_TEXT_CHARS = 16_000; // well inside the content's 64 KiB body bound
const WINDOW = describeSeconds(DELETE_WINDOW_MS / 1000);

export interface Sent {
  clientId: string;
  actions: Action[];
  event: Event | null; // what changed in one's own history (shown at once)
}

/** The account that wrote `m` (a 1:1 row: one of the two sides; a group row names it). */
export function authorOf(state: CoreState, m: StoredMessage): string {
  return m.outgoing ? state.accountId : (m.author ?? m.peer);
}

/**
 * How many devices will download an attachment sent to `peer` (the server may delete the blob
 * once they all did, spec §6): every device of the 1:1 peer or of the group's other members,
 * plus this account's other devices; null when some account's devices are not known here
 * (porch.client.media._recipient_devices).
 */
export async function mediaRecipients(state: CoreState, peer: string): Promise<number | null> {
  const store = state.store;
  const mine = (await store.peerDevices(state.accountId)).filter(
    (d) => !state.isMe(d.accountId, d.deviceId),
  ).length;
  const group = groupOf(peer);
  const accounts =
    group === null
      ? [peer]
      : ((await store.group(group))?.members ?? [])
          .map((m) => m.accountId)
          .filter((a) => a !== state.accountId);
  let total = mine;
  for (const account of accounts) {
    const count = (await store.peerDevices(account)).length;
    if (!count) return null;
    total += count;
  }
  return accounts.length ? total : null;
}

/** What a reply quotes of a message: its text, else its first attachment (quotes.preview). */
export function preview(m: StoredMessage): string {
  const cut = (s: string) => [...s].slice(0, MAX_QUOTE_CHARS).join("");
  if (m.body) return cut(m.body);
  const a = m.extra?.attachments?.[0];
  return a ? cut(`📎 ${a.name ?? a.contentType}`) : "";
}

export function quoteOf(state: CoreState, m: StoredMessage): Quote {
  return { id: m.clientId, author: authorOf(state, m), body: preview(m) };
}

/** A text (with its extras) into history and the durable outbox in one commit. */
export async function sendText(
  state: CoreState,
  peer: string,
  body: string,
  extras: { reply?: Quote; attachments?: Attachment[] } = {},
): Promise<Sent> {
  if (!body.trim() && !extras.attachments?.length)
    throw new ClientError("an empty message is not sent", "empty_message");
  if (body.length > MAX_TEXT_CHARS)
    throw new ClientError(`a message is at most ${MAX_TEXT_CHARS} characters`, "too_long");
  const clientId = randomId();
  const ts = state.clock();
  const group = groupOf(peer);
  // A group's timer lives in its sealed state (core/group_live.ts), a 1:1 timer in its row.
  const local = group !== null ? await state.store.group(group) : null;
  const timer =
    group !== null
      ? (local?.state?.timerSeconds ?? 0)
      : ((await state.store.timer(peer))?.seconds ?? 0);
  const text: Text = { t: "text", id: clientId, body, ts };
  if (group !== null) text.group = group; // a group text names its group (spec E)
  if (extras.reply) text.reply = extras.reply;
  if (extras.attachments?.length) text.attachments = extras.attachments;
  if (timer) text.expires = timer; // a text sent while the timer is on disappears after it
  const content = encodeContent(text);
  const stored = storedText(text, 0);
  // Whom a group text goes to: its ticks wait for their receipts (core/group_live.ts).
  if (group !== null) stored.extra = { ...stored.extra, to: othersOf(state, local) };
  const item = { clientId, recipient: peer, content, isText: true, createdAt: ts };
  await state.store.commit({
    messages: [
      {
        peer,
        clientId,
        outgoing: true,
        device: state.deviceId,
        ts,
        body,
        status: "queued",
        serverTs: 0,
        unread: false,
        ...stored,
      },
    ],
    enqueue: [timer ? { ...item, ttl: timer } : item],
  });
  return { clientId, actions: [{ type: "WakeOutbox", delay: 0 }], event: null };
}

async function act(state: CoreState, peer: string, content: RichAction): Promise<Sent> {
  const group = groupOf(peer);
  // In a group the action travels in its Megolm session and names the group (spec E), as
  // porch.client.rich does; the group's timer is not a content.
  if (group !== null) {
    if (content.t === "timer")
      throw new ClientError("a group's disappearing timer is part of its settings", "usage");
    const local = await state.store.group(group);
    if (!local?.members.some((m) => m.accountId === state.accountId))
      throw new ClientError("you are not a member of this group any more", "forbidden");
    content = { ...content, group };
  }
  const writes: Writes = {};
  const event = await applyRich(
    state,
    peer,
    state.accountId,
    content,
    writes,
    state.clock(),
    "You",
  );
  const clientId = randomId();
  (writes.enqueue ??= []).push({
    clientId,
    recipient: peer,
    content: encodeContent(content),
    isText: false,
    createdAt: state.clock(),
  });
  await state.store.commit(writes);
  return { clientId, actions: [{ type: "WakeOutbox", delay: 0 }], event };
}

async function target(state: CoreState, peer: string, m: StoredMessage): Promise<StoredMessage> {
  const found = await state.store.message(peer, m.outgoing, m.clientId);
  if (!found || found.deleted || found.status === "notice" || found.status === "undecryptable")
    throw new ClientError("that message is not in this conversation any more", "not_found");
  return found;
}

/** React with `emoji` ("" removes this account's reaction). */
export async function react(
  state: CoreState,
  peer: string,
  m: StoredMessage,
  emoji: string,
): Promise<Sent> {
  if (utf8encode(emoji).length > MAX_EMOJI_BYTES)
    throw new ClientError(`a reaction is one emoji (at most ${MAX_EMOJI_BYTES} bytes)`, "usage");
  const found = await target(state, peer, m);
  const author = authorOf(state, found);
  return act(state, peer, { t: "reaction", id: found.clientId, author, emoji, ts: state.clock() });
}

async function own(state: CoreState, peer: string, m: StoredMessage, done: string) {
  const found = await target(state, peer, m);
  if (!found.outgoing) throw new ClientError(`you can only change your own messages`, "not_author");
  if (!withinWindow(found, state.clock()))
    throw new ClientError(
      `messages can only be ${done} for ${WINDOW} after they were sent`,
      "too_late",
    );
  return found;
}

export async function edit(
  state: CoreState,
  peer: string,
  m: StoredMessage,
  body: string,
): Promise<Sent> {
  if (!body.trim()) throw new ClientError("an edit needs some text", "empty_message");
  if (body.length > MAX_TEXT_CHARS)
    throw new ClientError(`a message is at most ${MAX_TEXT_CHARS} characters`, "too_long");
  const found = await own(state, peer, m, "edited");
  if ((found.extra?.edits?.length ?? 0) >= MAX_EDITS)
    throw new ClientError(
      `that message was edited ${MAX_EDITS} times already; send a new one instead`,
      "edit_limit",
    );
  return act(state, peer, { t: "edit", id: found.clientId, body, ts: state.clock() });
}

export async function deleteForEveryone(
  state: CoreState,
  peer: string,
  m: StoredMessage,
): Promise<Sent> {
  const found = await own(state, peer, m, "deleted");
  return act(state, peer, { t: "delete", id: found.clientId, ts: state.clock() });
}

/** Turn disappearing messages on (`seconds`) or off (0) for a 1:1 conversation. */
export async function setTimer(state: CoreState, peer: string, seconds: number): Promise<Sent> {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_TIMER_SECONDS)
    throw new ClientError("a disappearing timer is 0 (off) up to 365 days", "bad_timer");
  return act(state, peer, { t: "timer", seconds, ts: state.clock() });
}

/** Delete the disappearing messages whose time came; one MessageDeleted (expired) each. */
export async function expireNow(state: CoreState): Promise<Event[]> {
  const gone = await state.store.expire(state.clock());
  return gone.map((g) => ({
    type: "MessageDeleted" as const,
    peer: g.peer,
    id: g.clientId,
    author: g.outgoing ? state.accountId : g.peer,
    expired: true,
  }));
}
