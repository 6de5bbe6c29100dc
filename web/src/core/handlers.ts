/**
 * One handler per content kind (mirrors src/porch/client/core/handlers.py). A handler works
 * in two steps because of store-before-ack (docs/design.md, "The client"): `persist` adds to
 * the writes committed with the envelope's "seen" mark, `react` runs after the commit
 * (events, receipts). A kind without a handler is acknowledged and ignored, so an older
 * client survives newer senders.
 */

import type { Content, Receipt, Retry, Sent, Text, Typing } from "../crypto/content";
import type { CoreState } from "./context";
import { persistSentRich, reactSentRich, registerRich, storedText, textTs } from "./rich";
import { answerRetry } from "./retry";
import { type StoredMessage, type Writes, messageKey } from "./types";

export interface Envelope {
  id: number;
  ts: number;
  sender: string;
  device: number;
}

export interface Handler {
  /** Add what must be stored before the ack; the key of a message it adds, if any. */
  persist(
    state: CoreState,
    env: Envelope,
    content: Content,
    writes: Writes,
  ): string | null | Promise<string | null>; // async for the ones that read rows (core/rich.ts)
  /** After the commit; `isNew` says whether the message it added was new. */
  react(state: CoreState, env: Envelope, content: Content, isNew: boolean): Promise<void>;
}

function addMessage(writes: Writes, message: StoredMessage): string {
  (writes.messages ??= []).push(message);
  return messageKey(message.peer, message.outgoing, message.clientId);
}

function messageEvent(text: Text, env: Envelope, outgoing: boolean, to: string | null) {
  return {
    type: "Message" as const,
    id: text.id,
    sender: env.sender,
    senderDevice: env.device,
    text: text.body,
    ts: text.ts,
    serverTs: env.ts,
    outgoing,
    to,
  };
}

const textHandler: Handler = {
  persist(_state, env, content, writes) {
    const text = content as Text;
    // Unique on (peer, direction, client message id): a resend shows once.
    return addMessage(writes, {
      peer: env.sender,
      clientId: text.id,
      outgoing: false,
      device: env.device,
      ts: textTs(text, env.ts),
      body: text.body,
      status: "received",
      serverTs: env.ts,
      unread: true,
      ...storedText(text, env.ts),
    });
  },
  async react(state, env, content, isNew) {
    if (!isNew) return;
    const text = content as Text;
    if (env.sender !== state.accountId) {
      const ids = state.pendingReceipts.get(env.sender) ?? [];
      ids.push(text.id);
      state.pendingReceipts.set(env.sender, ids);
    }
    state.emit(messageEvent(text, env, false, null));
  },
};

const nothingToStore = { persist: () => null };

const receiptHandler: Handler = {
  ...nothingToStore,
  async react(state, env, content) {
    const receipt = content as Receipt;
    await state.store.commit({
      statuses: [{ peer: env.sender, ids: receipt.ids, outgoing: true, status: receipt.kind }],
    });
    state.emit({ type: "ReceiptEvent", sender: env.sender, kind: receipt.kind, ids: receipt.ids });
  },
};

const typingHandler: Handler = {
  ...nothingToStore,
  async react(state, env, content) {
    state.emit({
      type: "TypingEvent",
      sender: env.sender,
      started: (content as Typing).state === "started",
    });
  },
};

/** "Resend the message you sent me" (core/retry.ts): answered after the commit, as the
 * SDK's RetryHandler does. */
const retryHandler: Handler = {
  ...nothingToStore,
  async react(state, env, content) {
    await answerRetry(state, env.sender, env.device, content as Retry);
  },
};

/** A copy of what this account sent from another of its devices (spec D). */
const sentHandler: Handler = {
  persist(state, env, content, writes) {
    const sent = content as Sent;
    if (env.sender !== state.accountId) return null;
    if (sent.content.t !== "text") return persistSentRich(state, env, sent, writes);
    const text = sent.content;
    return addMessage(writes, {
      peer: sent.to,
      clientId: text.id,
      outgoing: true,
      device: env.device,
      ts: text.ts,
      body: text.body,
      status: "sent",
      serverTs: env.ts,
      unread: false,
      ...storedText(text, env.ts),
    });
  },
  async react(state, env, content, isNew) {
    const sent = content as Sent;
    if (env.sender !== state.accountId) return; // from anyone else it means nothing
    const inner = sent.content;
    if (inner.t === "receipt" && inner.kind === "read") {
      // Read-state sync: read on another of our devices, read here too.
      await state.store.commit({
        statuses: [{ peer: sent.to, ids: inner.ids, outgoing: false, status: "read" }],
      });
      state.emit({ type: "ReadElsewhere", peer: sent.to, ids: inner.ids }); // the badge clears
    } else if (inner.t === "text" && isNew) {
      state.emit(messageEvent(inner, env, true, sent.to));
    } else {
      reactSentRich(state, content);
    }
  },
};

/** Kinds this version does not act on (unknown, and group contents until groups are on). */
const ignored: Handler = { ...nothingToStore, react: async () => undefined };

export class Handlers {
  readonly #byKind = new Map<string, Handler>();
  fallback: Handler = ignored;

  register(kind: Content["t"], handler: Handler): void {
    this.#byKind.set(kind, handler);
  }

  forContent(content: Content): Handler {
    return this.#byKind.get(content.t) ?? this.fallback;
  }
}

export function defaultHandlers(): Handlers {
  const handlers = new Handlers();
  handlers.register("text", textHandler);
  handlers.register("receipt", receiptHandler);
  handlers.register("typing", typingHandler);
  handlers.register("retry", retryHandler);
  handlers.register("sent", sentHandler);
  registerRich(handlers);
  return handlers;
}
