/**
 * Rich messages in the browser core: what a text's extras become in the store, and the rules
 * for reactions, edits, deletes and timers (mirrors src/porch/client/core/rich.py; docs/
 * protocol.md, "Rich contents"). The same rules run for what arrives and for one's own
 * actions (core/rich_send.ts), so what the sender shows is what the receivers show:
 * - a reaction is the sending account's, one per message ("" removes it, the newest wins);
 * - an edit or delete applies only from the target's author, and only when the server stored
 *   it at most DELETE_WINDOW_MS after the target (server times; the content ts orders edits);
 * - a timer sets the 1:1 conversation's disappearing timer and adds a notice line (a group's
 *   timer lives in its sealed state, never in a content).
 * In a group conversation ("g:<group>" peer) an action arrives inside Megolm by its sender
 * (core/group_receive.ts); the target is the row of the member the action names as author
 * (its `author` column), as porch.client.rich_store.row_author finds it.
 */

import type { Content, Sent, Text } from "../crypto/content";
import {
  DELETE_WINDOW_MS,
  type Delete,
  type Edit,
  type Reaction,
  type Timer,
} from "../crypto/rich";
import type { CoreState } from "./context";
import type { Event } from "./events";
import type { Envelope, Handler, Handlers } from "./handlers";
import type { MessageExtra, StoredMessage, Writes } from "./types";

export type RichAction = Reaction | Edit | Delete | Timer;
export const MAX_EDITS = 20; // porch.client.history.MAX_EDITS
// A text dated further ahead of its server time is shown (and expires) at the server's time.
export const MAX_FUTURE_MS = 24 * 3600 * 1000;
const UNITS: Array<[number, string]> = [
  [7 * 86400, "week"],
  [86400, "day"],
  [3600, "hour"],
  [60, "minute"],
  [1, "second"],
];

/** The time a received text is shown at: its own ts, unless more than a day past the server's. */
export function textTs(text: Text, serverTs: number): number {
  return serverTs && text.ts > serverTs + MAX_FUTURE_MS ? serverTs : text.ts;
}

/** The optional row fields of a text: its extras and when it expires (spec §3: from its ts). */
export function storedText(text: Text, serverTs: number): Partial<StoredMessage> {
  const out: Partial<StoredMessage> = {};
  const extra: MessageExtra = {};
  if (text.attachments?.length) extra.attachments = [...text.attachments];
  if (text.reply) extra.reply = text.reply;
  if (text.forwarded) extra.forwarded = true;
  if (Object.keys(extra).length) out.extra = extra;
  if (text.expires !== undefined) out.expiresAt = textTs(text, serverTs) + text.expires * 1000;
  return out;
}

/** 30 seconds, 5 minutes, 1 day, 2 weeks: the largest unit that divides it evenly. */
export function describeSeconds(seconds: number): string {
  for (const [size, unit] of UNITS) {
    if (seconds % size === 0) {
      const count = seconds / size;
      return `${count} ${unit}${count === 1 ? "" : "s"}`;
    }
  }
  return `${seconds} seconds`;
}

export function timerNotice(who: string, seconds: number): string {
  if (seconds === 0) return `${who} turned off disappearing messages`;
  return `${who} set disappearing messages to ${describeSeconds(seconds)}`;
}

/** Whether an action the server stored at `at` may still change `target`. */
export function withinWindow(target: StoredMessage, at: number): boolean {
  return at - (target.serverTs || target.ts) <= DELETE_WINDOW_MS;
}

function changeable(m: StoredMessage): boolean {
  // Lines the client wrote itself (notices, placeholders) belong to nobody.
  return !m.deleted && m.status !== "notice" && m.status !== "undecryptable";
}

/** The row of the message `author` wrote in `peer`'s chat (1:1 or group), if it is here. */
export async function findMessage(
  state: CoreState,
  peer: string,
  author: string,
  clientId: string,
): Promise<StoredMessage | null> {
  if (peer.startsWith("g:")) {
    // Rows are keyed without their author: a received row counts only when its recorded
    // sender is `author`, so nobody reaches another member's message by reusing its id.
    const row = await state.store.message(peer, author === state.accountId, clientId);
    return row && (row.outgoing || row.author === author) ? row : null;
  }
  if (author !== state.accountId && author !== peer) return null; // by one of the two sides
  return state.store.message(peer, author === state.accountId, clientId);
}

function update(writes: Writes, m: StoredMessage, patch: Partial<StoredMessage>): void {
  const next = { ...m, ...patch };
  (writes.updates ??= []).push({
    peer: m.peer,
    outgoing: m.outgoing,
    clientId: m.clientId,
    body: next.body,
    extra: next.extra ?? null,
    edited: next.edited ?? false,
    deleted: next.deleted ?? false,
  });
}

/**
 * Apply `actor`'s action in `peer`'s chat: add its writes and return the event to emit once
 * they are committed, or null when it changes nothing (unknown target, too late, older).
 * `at`: when the server stored the action (its envelope's ts; now for one's own).
 */
export async function applyRich(
  state: CoreState,
  peer: string,
  actor: string,
  content: RichAction,
  writes: Writes,
  at: number,
  label: string,
): Promise<Event | null> {
  if (content.t === "timer") {
    if (peer.startsWith("g:")) return null; // a group's timer lives in its sealed state
    const current = await state.store.timer(peer);
    if (current && (current.ts > content.ts || current.seconds === content.seconds)) return null;
    (writes.timers ??= []).push({ peer, seconds: content.seconds, ts: content.ts });
    const who = actor === state.accountId ? "You" : label;
    (writes.messages ??= []).push({
      peer,
      clientId: `timer-${content.ts}`,
      outgoing: false,
      device: 0,
      ts: content.ts,
      body: timerNotice(who, content.seconds),
      status: "notice",
      serverTs: at,
      unread: false,
    });
    return { type: "TimerChanged", peer, seconds: content.seconds, by: actor };
  }
  const author = content.t === "reaction" ? content.author : actor;
  const target = await findMessage(state, peer, author, content.id);
  if (!target || !changeable(target)) return null;
  const extra: MessageExtra = { ...target.extra };
  if (content.t === "reaction") {
    const current = extra.reactions?.[actor];
    if (current && (current.ts > content.ts || current.emoji === content.emoji)) return null;
    extra.reactions = { ...extra.reactions, [actor]: { emoji: content.emoji, ts: content.ts } };
    update(writes, target, { extra });
    const { id, emoji } = content;
    return { type: "ReactionChanged", peer, id, author, reactor: actor, emoji };
  }
  if (!withinWindow(target, at)) return null;
  if (content.t === "edit") {
    const edits = extra.edits ?? [];
    const currentTs = extra.bodyTs ?? target.ts;
    let versions: Array<[number, string]> = [...edits, [currentTs, target.body]];
    const known = versions.some(([ts, body]) => ts === content.ts && body === content.body);
    if (known || edits.length >= MAX_EDITS) return null;
    versions = [...versions, [content.ts, content.body] as [number, string]].sort(
      (a, b) => a[0] - b[0],
    );
    const [latestTs, latest] = versions.at(-1)!;
    extra.edits = versions.slice(0, -1);
    extra.bodyTs = latestTs;
    update(writes, target, { body: latest, extra, edited: true });
    return { type: "MessageEdited", peer, id: content.id, author, text: latest, ts: latestTs };
  }
  update(writes, target, { body: "", extra: {}, edited: false, deleted: true });
  return { type: "MessageDeleted", peer, id: content.id, author, expired: false };
}

// Events waiting for their commit: persist decides, react emits (store before ack).
const decided = new WeakMap<object, Event>();

/** A reaction, edit, delete or timer over Olm: in the chat with its sender. */
const directRichHandler: Handler = {
  async persist(state, env: Envelope, content: Content, writes) {
    const action = content as RichAction;
    if ("group" in action && action.group !== undefined) return null; // came the wrong way
    const label = (await state.store.contact(env.sender))?.label ?? env.sender.slice(0, 8);
    const event = await applyRich(state, env.sender, env.sender, action, writes, env.ts, label);
    if (event) decided.set(content, event);
    return null;
  },
  async react(state, _env, content) {
    const event = decided.get(content);
    if (event) state.emit(event);
  },
};

/** One's own action from another of one's devices (a `sent` copy): as if done here. */
export async function persistSentRich(
  state: CoreState,
  env: Envelope,
  sent: Sent,
  writes: Writes,
): Promise<null> {
  const inner = sent.content;
  if (inner.t === "text" || inner.t === "receipt") return null;
  if ("group" in inner && inner.group !== undefined) return null;
  const event = await applyRich(state, sent.to, state.accountId, inner, writes, env.ts, "You");
  if (event) decided.set(sent, event);
  return null;
}

export function reactSentRich(state: CoreState, sent: Content): void {
  const event = decided.get(sent);
  if (event) state.emit(event);
}

export function registerRich(handlers: Handlers): void {
  for (const kind of ["reaction", "edit", "delete", "timer"] as const)
    handlers.register(kind, directRichHandler);
}
