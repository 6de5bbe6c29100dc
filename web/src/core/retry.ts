/**
 * Retry requests: how a message that could not be decrypted gets resent (mirrors
 * src/porch/client/retry.py; docs/design.md, "Healing decryption failures (retry requests)";
 * docs/protocol.md, section 6 step 10 and section 8).
 *
 * The receiver names the failed envelope by its server `ts` and sending device in a `retry`
 * content, sent over a new session started from one of the sender's one-time keys (so it is
 * a pre-key message the sender can always decrypt); the sender starts a new session too and
 * sends the message again from its own history, with the same text id, so it shows once.
 * Both sides are bounded, as in the SDK, so two broken clients cannot ask each other for ever:
 *
 * - the receiver asks at most MAX_REQUESTS_PER_DEVICE times per REQUEST_WINDOW_MS per sender
 *   device (each request claims one of that device's one-time keys); in memory, at most
 *   MAX_TRACKED_DEVICES devices tracked;
 * - the sender resends a message at most MAX_RESENDS_PER_MESSAGE times (counted in the
 *   `resends` store, so a reload does not reset it), only texts of its own history sent
 *   within RESEND_WINDOW_MS (Signal keeps its resend log for a day).
 *
 * Neither side throws sessions away (older ones still decrypt what is in flight): the renewal
 * mark (CoreState.renew) makes the outbox claim a key and prefer the new session.
 */

import { type Retry, type Text, encodeContent } from "../crypto/content";
import { wake } from "./actions";
import { type CoreState, randomId } from "./context";
import type { OutboxItem, StoredMessage } from "./types";

export const RESEND_WINDOW_MS = 24 * 3_600_000;
export const MAX_RESENDS_PER_MESSAGE = 3;
export const REQUEST_WINDOW_MS = 3_600_000;
export const MAX_REQUESTS_PER_DEVICE = 10;
export const MAX_TRACKED_DEVICES = 1024;
export const ASKED_TO_RESEND = "asked them to resend."; // as porch.client.retry

/** The history line of a message that could not be decrypted (placeholder_text). */
export function placeholderText(asked: boolean): string {
  return asked
    ? `A message could not be decrypted; ${ASKED_TO_RESEND}`
    : "A message could not be decrypted.";
}

/** When a sent message left: the server's timestamp once `sent` came, else the local one (the
 * SDK writes the server's over the local one; this store keeps both). */
function sentAt(m: StoredMessage): number {
  return m.serverTs || m.ts;
}

export type ResendPlan = { resend: StoredMessage } | { reason: string };

/** What to do with a retry request for `message` (null: nothing of ours matched). */
export function planResend(
  message: StoredMessage | null,
  resentBefore: number,
  now: number,
): ResendPlan {
  if (message === null || !message.outgoing)
    return { reason: "no message of ours matches the request" };
  if (message.status === "queued") return { reason: "the message was never sent" };
  if (message.deleted) return { reason: "the message was deleted for everyone" };
  if (message.expiresAt !== undefined && message.expiresAt <= now)
    return { reason: "the message has disappeared" };
  if (now - sentAt(message) > RESEND_WINDOW_MS)
    return { reason: "the message is older than the resend window" };
  if (resentBefore >= MAX_RESENDS_PER_MESSAGE)
    return { reason: `the message was resent ${resentBefore} times already` };
  return { resend: message };
}

/** Caps the retry requests sent to each peer device: a sliding count per window, for at
 * most `maxDevices` devices (the least recently asked is forgotten first). */
export class RequestLimiter {
  readonly #sent = new Map<string, number[]>(); // insertion order: least recently asked first

  constructor(
    private readonly limit = MAX_REQUESTS_PER_DEVICE,
    private readonly windowMs = REQUEST_WINDOW_MS,
    private readonly maxDevices = MAX_TRACKED_DEVICES,
  ) {}

  /** True (and counted) if one more request to `peer` ("account/device") fits the window. */
  allow(peer: string, now: number): boolean {
    const recent = (this.#sent.get(peer) ?? []).filter((t) => now - t < this.windowMs);
    this.#sent.delete(peer);
    const allowed = recent.length < this.limit;
    if (allowed) recent.push(now);
    this.#sent.set(peer, recent);
    while (this.#sent.size > this.maxDevices) {
      this.#sent.delete(this.#sent.keys().next().value!);
    }
    return allowed;
  }

  get tracked(): number {
    return this.#sent.size;
  }
}

/**
 * The text to send again for `m`, and its envelope ttl: the same id, body and rich fields
 * (attachments by pointer, the quote, the forwarded mark) and, for a disappearing message,
 * what is left of its time, so every device still removes it when the original said
 * (expires_at = ts + exp * 1000, spec §3) and the server drops it then (spec §7); as
 * resend_content in the SDK.
 */
export function resendContent(m: StoredMessage, now: number): { text: Text; ttl?: number } {
  const ts = sentAt(m);
  const text: Text = { t: "text", id: m.clientId, body: m.body, ts };
  if (m.extra?.attachments?.length) text.attachments = m.extra.attachments;
  if (m.extra?.reply) text.reply = m.extra.reply;
  if (m.extra?.forwarded) text.forwarded = true;
  if (m.expiresAt === undefined) return { text };
  text.expires = Math.max(1, Math.ceil((m.expiresAt - ts) / 1000));
  return { text, ttl: Math.max(1, Math.ceil((m.expiresAt - now) / 1000)) };
}

/**
 * The receiver's side: a retry request for the envelope (sender, device, serverTs), marking
 * the device for a new session; the outbox item to commit (with the placeholder), or null
 * when the per-device cap says no.
 */
export function retryRequest(
  state: CoreState,
  limiter: RequestLimiter,
  sender: string,
  device: number,
  serverTs: number,
): Omit<OutboxItem, "seq"> | null {
  const peer = `${sender}/${device}`;
  if (!limiter.allow(peer, state.clock())) return null; // too many lately
  // Whatever session we hold with that device may not work: the request goes out on a new
  // one, a pre-key message from a claimed key that the sender can always decrypt.
  state.renew.add(peer);
  const content = encodeContent({ t: "retry", ts: serverTs, device });
  return {
    clientId: randomId(),
    recipient: sender,
    content,
    isText: false,
    createdAt: state.clock(),
  };
}

/** The sender's side: the peer could not decrypt one of our messages; new session, then
 * resend it (Retrier.answer). Nothing is said to the user either way. */
export async function answerRetry(
  state: CoreState,
  peer: string,
  peerDevice: number,
  request: Retry,
): Promise<void> {
  if (request.device !== state.deviceId) return; // about another of our devices: it answers
  // The peer could not use our session: what we send next goes on a fresh one.
  state.renew.add(`${peer}/${peerDevice}`);
  const store = state.store;
  const message = await store.findOutgoing(peer, request.id ?? null, request.ts);
  const resent = message === null ? 0 : await store.resendCount(peer, message.clientId);
  const now = state.clock();
  const plan = planResend(message, resent, now);
  if ("reason" in plan) return; // a receipt, a group text, too old, too often: dropped
  const { text, ttl } = resendContent(plan.resend, now);
  // A new outbox id (the server would deduplicate the old one), the same message id; not a
  // text item, so its `sent` leaves the original's status and server ts as they are.
  const item: Omit<OutboxItem, "seq"> = {
    clientId: randomId(),
    recipient: peer,
    content: encodeContent(text),
    isText: false,
    createdAt: now,
  };
  if (ttl !== undefined) item.ttl = ttl;
  await store.commit({ enqueue: [item], resends: [{ peer, clientId: plan.resend.clientId }] });
  state.out.push(wake());
}
