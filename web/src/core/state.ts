/**
 * ClientCore: the browser client's state machine, with no I/O (mirrors
 * src/porch/client/core/state.py; docs/design.md, "Client core"). Decoded server frames go in
 * (`receive`), actions come out (./actions); the answers to the HTTP calls the actions ask
 * for come back as method calls. The store is its one collaborator, asynchronous because
 * IndexedDB is, so methods return promises; the runner calls them one at a time.
 */

import { encodeContent } from "../crypto/content";
import type { OlmMachine, OneTimeKey } from "../crypto/olm";
import type { Libolm } from "../crypto/olm_raw";
import type { ClientFrame, SendFrame } from "../protocol/frames.gen";
import type { Action, ClaimKeys } from "./actions";
import { type Clock, CoreState, nowMs, randomId } from "./context";
import type { ClientError } from "./errors";
import * as frames from "./frames";
import { type Handlers, defaultHandlers } from "./handlers";
import { GroupCrypto } from "./group_crypto";
import { GroupReceiver } from "./group_receive";
import { groupTypingFrame, queueGroupReads } from "./group_live";
import { GroupSends, groupOf } from "./group_send";
import { GroupSync, type ServerGroup } from "./group_sync";
import { Outbox } from "./outbox";
import { resumeIfAccepted, resumePaused } from "./outbox_paused";
import { Receiver } from "./receive";
import { sendText as sendRichText } from "./rich_send";
import { verifyBundle } from "./keys";
import type { Bundle, LocalStore, OutboxItem } from "./types";
import { acceptIdentity, markVerified, verification } from "./verified";

export const ONE_TIME_KEYS_TARGET = 50;
export const ONE_TIME_KEYS_LOW = 20;
export const ACK_BATCH = 128;
export { MAX_TEXT_CHARS } from "./rich_send"; // well inside the content's 64 KiB body bound
const GROUP_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The group parts of a core (./group_*), once enableGroups made them. */
export interface CoreGroups {
  crypto: GroupCrypto;
  sync: GroupSync;
  sends: GroupSends;
  receiver: GroupReceiver;
}

export class ClientCore {
  readonly state: CoreState;
  readonly #receiver: Receiver;
  readonly #outbox: Outbox;
  readonly #handlers: Handlers;
  groups: CoreGroups | null = null;

  constructor(
    store: LocalStore,
    olm: OlmMachine,
    accountId: string,
    deviceId: number,
    options: { handlers?: Handlers; clock?: Clock; maxParked?: number } = {},
  ) {
    this.state = new CoreState(store, olm, accountId, deviceId, options.clock ?? nowMs);
    this.#handlers = options.handlers ?? defaultHandlers();
    this.#receiver = new Receiver(this.state, this.#handlers, options.maxParked);
    this.#outbox = new Outbox(this.state);
  }

  /** Groups (Megolm) on: `pickleKey` seals the Megolm pickles (crypto/megolm derives its own
   * subkey from it, as it does in Python from the profile's pickle key). */
  enableGroups(lib: Libolm, pickleKey: Uint8Array): CoreGroups {
    const crypto = new GroupCrypto(this.state, lib, pickleKey);
    const sync = new GroupSync(this.state, crypto);
    const sends = new GroupSends(this.state, crypto, this.#outbox);
    const receiver = new GroupReceiver(this.state, crypto, sync);
    receiver.register(this.#handlers);
    this.#outbox.groups = sends;
    this.#receiver.groupTake = (env, body) => receiver.take(env, body);
    this.groups = { crypto, sync, sends, receiver };
    return this.groups;
  }

  async groupFetched(group: ServerGroup): Promise<Action[]> {
    await this.groups?.sync.fetched(group);
    return this.#take();
  }

  async groupFetchFailed(groupId: string, error: ClientError): Promise<Action[]> {
    await this.groups?.sync.failed(groupId, error);
    return this.#take();
  }

  #take(): Action[] {
    return this.state.take();
  }

  // The connection --------------------------------------------------------------------------

  authFrame(password: string): ClientFrame {
    return frames.auth(this.state.accountId, this.state.deviceId, password);
  }

  /** The server accepted `auth` with this `ready` frame. */
  connected(ready: Record<string, unknown>): Action[] {
    this.#outbox.reset();
    this.#receiver.reset();
    this.groups?.sync.reset();
    const keys = ready.one_time_keys;
    if (typeof keys !== "number" || keys < ONE_TIME_KEYS_LOW)
      this.state.out.push({ type: "TopUpKeys" });
    return this.#take();
  }

  /** Envelopes waiting for keys were not acknowledged: they come again. */
  disconnected(): void {
    this.#receiver.reset();
  }

  /** One decoded server frame. */
  async receive(frame: Record<string, unknown>): Promise<Action[]> {
    const state = this.state;
    switch (frame.type) {
      case "envelope":
        await this.#receiver.take(frame);
        if (state.pendingAcks.length >= ACK_BATCH)
          return [...this.#take(), ...(await this.flush())];
        break;
      case "envelopes": {
        const items = Array.isArray(frame.items) ? frame.items.slice(0, 64) : [frame.items];
        for (const item of items) await this.#receiver.take(item);
        return [...this.#take(), ...(await this.flush())];
      }
      case "sent":
        state.out.push(...(await this.#outbox.onSent(frame)));
        break;
      case "error":
        state.out.push(...(await this.#outbox.onError(frame)));
        break;
      case "keys_low":
        state.out.push({ type: "TopUpKeys" });
        break;
      case "drained":
        state.emit({ type: "Drained" });
        break;
      case "group_changed": // a hint to refetch (spec B)
        if (typeof frame.group === "string" && GROUP_ID.test(frame.group))
          this.groups?.sync.fetch(frame.group);
        break;
    }
    return this.#take();
  }

  /** Acks, rejects or receipts wait; or envelopes wait for keys (their acks will). */
  get wantsFlush(): boolean {
    const s = this.state;
    return (
      s.pendingAcks.length > 0 ||
      s.pendingReceipts.size > 0 ||
      s.pendingRejects.size > 0 ||
      this.parked > 0
    );
  }

  get parked(): number {
    return this.#receiver.parked;
  }

  /** Send what waits: receipts into the outbox, then acks, then rejects. */
  async flush(): Promise<Action[]> {
    const state = this.state;
    const receipts = state.pendingReceipts;
    state.pendingReceipts = new Map();
    for (const [sender, ids] of receipts) {
      await state.queueContent(sender, encodeContent({ t: "receipt", kind: "delivered", ids }));
    }
    const acks = state.pendingAcks;
    state.pendingAcks = [];
    for (const f of frames.acks(acks))
      state.out.push({ type: "SendFrame", frame: f, clientId: null });
    const rejects = state.pendingRejects;
    state.pendingRejects = new Map();
    for (const [reason, ids] of rejects) {
      for (const f of frames.rejects(reason, ids))
        state.out.push({ type: "SendFrame", frame: f, clientId: null });
    }
    return this.#take();
  }

  // Keys ------------------------------------------------------------------------------------

  async keysFetched(account: string, token: number, bundle: Bundle): Promise<Action[]> {
    await this.#receiver.keysFetched(account, token, bundle);
    // Own keys fetched for a device not known yet (its sent copy came first): it is linked,
    // so the next sent copy lists one's own devices again (state.py `_take`).
    if (account === this.state.accountId) this.#outbox.ownDevicesChanged();
    return this.#take();
  }

  /** A device of this account was linked or removed (the Devices screen saw it). */
  ownDevicesChanged(): void {
    this.#outbox.ownDevicesChanged();
  }

  async keysFetchFailed(account: string, token: number, error: ClientError): Promise<Action[]> {
    await this.#receiver.keysFetchFailed(account, token, error);
    return this.#take();
  }

  /** New one-time keys when the server holds `count`: none if that is enough. */
  async oneTimeKeys(count: number): Promise<OneTimeKey[]> {
    if (count >= ONE_TIME_KEYS_LOW) return [];
    const keys = this.state.olm.generateOneTimeKeys(ONE_TIME_KEYS_TARGET - Math.max(count, 0));
    await this.state.commit(); // before the upload: a key the server hands out must be ours
    return keys;
  }

  // Sending ---------------------------------------------------------------------------------

  nextOutboxItems(): Promise<OutboxItem[]> {
    return this.#outbox.nextItems();
  }

  async prepare(item: OutboxItem): Promise<Action[]> {
    return [...(await this.#outbox.prepare(item)), ...this.#take()];
  }

  async keysClaimed(claim: ClaimKeys, bundle: Bundle): Promise<Action[]> {
    return [...(await this.#outbox.keysClaimed(claim, bundle)), ...this.#take()];
  }

  async keysClaimFailed(claim: ClaimKeys, error: ClientError): Promise<Action[]> {
    return [...(await this.#outbox.keysClaimFailed(claim, error)), ...this.#take()];
  }

  notSent(clientId: string): void {
    this.#outbox.notSent(clientId);
  }

  /** A text into history and the durable outbox in one commit; its client id. A text sent
   * while the conversation's timer is on disappears after it (core/rich_send.ts). */
  async sendText(
    recipient: string,
    body: string,
  ): Promise<{ clientId: string; actions: Action[] }> {
    const { clientId, actions } = await sendRichText(this.state, recipient, body);
    return { clientId, actions };
  }

  /** The user saw these received messages: mark them read and tell the sender. */
  async markRead(peer: string, ids: readonly string[]): Promise<Action[]> {
    if (!ids.length) return [];
    await this.state.store.commit({ statuses: [{ peer, ids, outgoing: false, status: "read" }] });
    if (groupOf(peer) !== null) {
      await queueGroupReads(this.state, peer, ids); // 1:1 to each author (./group_live)
      return this.#take();
    }
    await this.state.queueContent(peer, encodeContent({ t: "receipt", kind: "read", ids }));
    return this.#take();
  }

  /** An online-only typing frame, or null when a device lacks a session (typing claims no keys);
   * for `g:<group>`, Megolm to the group (./group_live). */
  async typingFrame(peer: string, started: boolean): Promise<SendFrame | null> {
    const state = this.state;
    const gid = groupOf(peer);
    if (gid !== null) {
      const crypto = this.groups?.crypto;
      return crypto ? groupTypingFrame(state, crypto, gid, started, randomId()) : null;
    }
    // Not to a verified contact's changed key either (as the SDK: docs/security.md).
    if (verification(await state.store.contact(peer)) === "verified_key_changed") return null;
    const devices = (await state.store.peerDevices(peer)).filter(
      (d) => !state.isMe(peer, d.deviceId),
    );
    if (!devices.length || !devices.every((d) => state.olm.hasSession([peer, d.deviceId])))
      return null;
    const content = encodeContent({ t: "typing", state: started ? "started" : "stopped" });
    const messages = await this.#outbox.encryptTo(peer, devices, content);
    return frames.send(randomId(), [frames.destination(peer, messages)], true);
  }

  // Verification (mirrors porch.client.trust; ./verified) ----------------------------------

  /** A fetched (unclaimed) bundle checked and its master key pinned, as every bundle is. */
  async checkBundle(bundle: Bundle): Promise<Action[]> {
    await verifyBundle(this.state, bundle, false);
    return this.#take();
  }

  /** Record that the user compared the safety number over `masterKey` (the current pin);
   * messages paused for the contact are queued again (./outbox_paused). */
  async markVerified(accountId: string, masterKey: string): Promise<Action[]> {
    const contact = markVerified(await this.state.store.contact(accountId), masterKey);
    return resumePaused(this.state, accountId, { contacts: [contact] });
  }

  /** Accept a verified contact's changed key without verifying it (unverified again); its
   * paused messages are queued again. */
  async acceptIdentity(accountId: string): Promise<Action[]> {
    const contact = await this.state.store.contact(accountId);
    return resumePaused(
      this.state,
      accountId,
      contact ? { contacts: [acceptIdentity(contact)] } : {},
    );
  }

  /** Paused items of a contact accepted or verified elsewhere meanwhile: queued again. */
  resumeIfAccepted(accountId: string): Promise<Action[]> {
    return resumeIfAccepted(this.state, accountId);
  }
}
