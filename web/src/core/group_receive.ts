/**
 * Receiving group messages (mirrors src/porch/client/core/group_receive.py; spec E).
 *
 * A kind-2 envelope carries one Megolm message from the device that sent it; GroupCrypto
 * opens it with the inbound session that very device shared over Olm. One it cannot open (no
 * key from that device yet: a member who joined later must not read what came before; a
 * replay; tampering) is acknowledged and reported, with a placeholder in the group's history:
 * the sender's connection committed the key before the message, so it would have come first.
 *
 * Inside Megolm: a text (stored under `g:<group>` with its author and extras; this account's
 * own texts from its other devices as outgoing), a reaction, edit or delete (./rich, by its
 * sender, in the group's conversation), a `group_update` and a `group_state_key` (the group is
 * fetched again), typing (online only). Over Olm (./handlers): `group_key`, `group_state_key`
 * and `group_update`, and the members' receipts for this account's group texts (the ticks:
 * ./group_live). A message from an account the group, as last fetched, does not list is
 * not shown (a removed member sending on with the session it had), bar its own leave update.
 */

import type { Content, GroupKey, GroupStateKey, GroupUpdate, Text } from "../crypto/content";
import { CryptoError } from "../crypto/errors";
import { decodeGroupMessage } from "../crypto/group_message";
import { b64decode } from "../protocol/codec";
import type { CoreState } from "./context";
import type { GroupCrypto } from "./group_crypto";
import type { GroupSync } from "./group_sync";
import type { Envelope, Handler, Handlers } from "./handlers";
import { withGroupTicks } from "./group_live";
import { placeholder } from "./receive";
import { type RichAction, applyRich, storedText, textTs } from "./rich";
import type { Event } from "./events";
import { type StoredMessage, type Writes, messageKey } from "./types";

const RECEIPT: Content = { t: "receipt", kind: "read", ids: [] }; // to look its handler up

export const groupPeer = (groupId: string): string => `g:${groupId}`;

function reason(exc: unknown): string {
  return exc instanceof Error ? exc.message : String(exc);
}

export class GroupReceiver {
  constructor(
    private readonly state: CoreState,
    private readonly crypto: GroupCrypto,
    private readonly sync: GroupSync,
  ) {}

  /** The Olm-borne group contents, registered with the 1:1 handlers. */
  register(handlers: Handlers): void {
    const { crypto, sync } = this;
    const nothing = { persist: () => null };
    const keyHandler: Handler = {
      ...nothing,
      // After the commit that marked the envelope seen, before its ack leaves (the ack is
      // sent at the next flush, after this returns): the key is stored first all the same.
      async react(state, env, content) {
        const key = content as GroupKey;
        try {
          await crypto.receiveKey(env.sender, env.device, key);
        } catch (exc) {
          if (!(exc instanceof CryptoError)) throw exc;
          state.emit({
            type: "DecryptionFailed",
            sender: env.sender,
            device: env.device,
            reason: `group key: ${exc.message}`,
          });
          return;
        }
        if (!(await state.store.group(key.group))) sync.fetch(key.group); // a new group
      },
    };
    handlers.register("group_key", keyHandler);
    handlers.register("group_state_key", {
      ...nothing,
      async react(_state, _env, content) {
        const key = content as GroupStateKey;
        if (await crypto.receiveStateKey(key)) sync.fetch(key.group);
      },
    });
    // Receipts for one's own group texts come 1:1 too: the ticks (./group_live).
    handlers.register("receipt", withGroupTicks(handlers.forContent(RECEIPT)));
    handlers.register("group_update", {
      ...nothing,
      async react(_state, env, content) {
        const update = content as GroupUpdate;
        // A `state` update names its sender in the timer notice its fetch may add
        // (./group_live); every update is a claim its fetch bears out (./group_notices).
        if (update.action === "state") await sync.claim(update.group, env.sender, update.revision);
        sync.told(env.sender, update);
      },
    });
  }

  /** One kind-2 envelope (its body base64). */
  async take(env: Envelope, bodyB64: string): Promise<void> {
    const state = this.state;
    let groupId: string | null = null;
    let result;
    try {
      const body = b64decode(bodyB64);
      groupId = decodeGroupMessage(body).groupId;
      result = await this.crypto.decrypt(env.sender, env.device, body);
    } catch (exc) {
      if (!(exc instanceof CryptoError) && !(exc instanceof RangeError)) throw exc;
      return this.#undecryptable(env, groupId, reason(exc), null);
    }
    const content = result.content;
    const local = await state.store.group(result.groupId);
    const listed = local?.members.some((m) => m.accountId === env.sender) ?? true;
    const leave = content.t === "group_update" && content.action === "leave";
    if (!listed && !leave) {
      return this.#undecryptable(
        env,
        result.groupId,
        "sent by someone who is no longer in the group: not shown",
        result.inbound,
      );
    }
    const writes: Writes = { seen: env.id ? [[env.id, env.ts]] : [], inbound: [result.inbound] };
    let key: string | null = null;
    if (content.t === "text" && !result.duplicate) key = this.#addText(env, content, writes);
    const rich = result.duplicate ? null : await this.#applyRich(env, content, writes);
    const added = await state.commit(writes);
    state.ack(env.id);
    await this.#react(env, result.groupId, content, key !== null && added.has(key), !local);
    if (rich) state.emit(rich);
  }

  /** A reaction, edit or delete by its sender (decrypt checked it names this group). */
  async #applyRich(env: Envelope, content: Content, writes: Writes): Promise<Event | null> {
    if (content.t !== "reaction" && content.t !== "edit" && content.t !== "delete") return null;
    const action: RichAction = content;
    const peer = groupPeer(content.group!);
    return applyRich(this.state, peer, env.sender, action, writes, env.ts, "");
  }

  #addText(env: Envelope, text: Text, writes: Writes): string {
    const outgoing = env.sender === this.state.accountId; // a copy from another own device
    const message: StoredMessage = {
      peer: groupPeer(text.group!),
      clientId: text.id,
      outgoing,
      device: env.device,
      ts: textTs(text, env.ts),
      body: text.body,
      status: outgoing ? "sent" : "received",
      serverTs: env.ts,
      unread: !outgoing,
      author: env.sender,
      ...storedText(text, env.ts), // expiry, a reply's quote, attachment pointers (keys inside Megolm)
    };
    (writes.messages ??= []).push(message);
    return messageKey(message.peer, message.outgoing, message.clientId);
  }

  async #react(
    env: Envelope,
    groupId: string,
    content: Content,
    isNew: boolean,
    unknown: boolean,
  ): Promise<void> {
    const state = this.state;
    if (unknown) this.sync.fetch(groupId); // a group this device has not fetched yet
    switch (content.t) {
      case "text":
        if (isNew && env.sender !== state.accountId) {
          // Delivery receipts for group texts go 1:1 to the author, never to the group.
          const ids = state.pendingReceipts.get(env.sender) ?? [];
          ids.push(content.id);
          state.pendingReceipts.set(env.sender, ids);
        }
        if (isNew) {
          state.emit({
            type: "Message",
            id: content.id,
            sender: env.sender,
            senderDevice: env.device,
            text: content.body,
            ts: content.ts,
            serverTs: env.ts,
            outgoing: env.sender === state.accountId,
            to: null,
            group: groupId,
          });
        }
        break;
      case "group_update":
        // A `state` update names its sender in the timer notice its fetch may add; the
        // update is only a claim: a notice once the fetch bears it out (core/group_notices.ts).
        if (content.action === "state")
          await this.sync.claim(groupId, env.sender, content.revision);
        if (content.group === groupId) this.sync.told(env.sender, content);
        else this.sync.fetch(groupId);
        break;
      case "group_state_key":
        if ((await this.crypto.receiveStateKey(content)) && !unknown) this.sync.fetch(groupId);
        break;
      case "typing":
        state.emit({
          type: "TypingEvent",
          sender: env.sender,
          started: content.state === "started",
          group: groupId,
        });
        break;
      default:
        break; // rich actions: applied in take; unknown kinds are ignored
    }
  }

  async #undecryptable(
    env: Envelope,
    groupId: string | null,
    why: string,
    inbound: [string, string] | null,
  ): Promise<void> {
    const state = this.state;
    const writes: Writes = { seen: env.id ? [[env.id, env.ts]] : [] };
    if (inbound) writes.inbound = [inbound];
    if (groupId !== null) {
      writes.messages = [{ ...placeholder(env, groupPeer(groupId)), author: env.sender }];
    }
    await state.commit(writes);
    state.ack(env.id);
    state.emit({ type: "DecryptionFailed", sender: env.sender, device: env.device, reason: why });
  }
}
