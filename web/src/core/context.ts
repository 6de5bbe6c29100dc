/**
 * What the parts of the core share (mirrors src/porch/client/core/context.py): the store,
 * the Olm machine, and what waits to go out. Sans-IO: the store is the one collaborator the
 * core calls, as the Python core keeps its SQLite store; everything on the network leaves as
 * an action.
 */

import type { RejectFrame } from "../protocol/frames.gen";
import { type Action, emit, wake } from "./actions";
import type { Event } from "./events";
import type { OlmMachine, PeerDevice } from "../crypto/olm";
import type { LocalStore, Writes } from "./types";

export type Clock = () => number;
export const nowMs: Clock = () => Date.now();

export function randomId(): string {
  // 12 random bytes, URL-safe base64 (Python's secrets.token_urlsafe(12)): a client id.
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(12));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

export function parsePeer(key: string): PeerDevice {
  const cut = key.lastIndexOf("/");
  return [key.slice(0, cut), Number(key.slice(cut + 1))];
}

export class CoreState {
  out: Action[] = [];
  pendingAcks: number[] = [];
  pendingRejects = new Map<RejectFrame["reason"], number[]>();
  pendingReceipts = new Map<string, string[]>(); // delivered receipts, by sender
  renew = new Set<string>(); // "account/device" whose next message starts a new session

  constructor(
    public store: LocalStore,
    public olm: OlmMachine,
    readonly accountId: string,
    readonly deviceId: number,
    readonly clock: Clock = nowMs,
  ) {}

  take(): Action[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  emit(event: Event): void {
    this.out.push(emit(event));
  }

  isMe(accountId: string, deviceId: number): boolean {
    return accountId === this.accountId && deviceId === this.deviceId;
  }

  ack(envelopeId: number): void {
    if (envelopeId) this.pendingAcks.push(envelopeId); // id 0 is online-only, never acked
  }

  /** Reject an envelope that can never be taken, and say so (docs/protocol.md, "Delivery"). */
  refuse(envelopeId: number, reason: RejectFrame["reason"], sender: string, device: number): void {
    if (envelopeId) {
      const ids = this.pendingRejects.get(reason) ?? [];
      ids.push(envelopeId);
      this.pendingRejects.set(reason, ids);
    }
    this.emit({ type: "DecryptionFailed", sender, device, reason });
  }

  /** Put a content into the durable outbox (a receipt, a text). */
  async queueContent(recipient: string, content: Uint8Array, isText = false): Promise<void> {
    await this.store.commit({
      enqueue: [{ clientId: randomId(), recipient, content, isText, createdAt: this.clock() }],
    });
    this.out.push(wake());
  }

  /** Add the Olm state that changed to `writes` (to commit with whatever it belongs to). */
  olmWrites(writes: Writes): Writes {
    const dirty = this.olm.dirtyPeers();
    if (dirty.size) {
      writes.sessions = new Map([...dirty].map((k) => [k, this.olm.pickleSessions(parsePeer(k))]));
    }
    if (this.olm.accountDirty || dirty.size) writes.olmAccount = this.olm.pickleAccount();
    return writes;
  }

  /** Commit `writes` with the Olm state: a moved ratchet is stored before anything leaves. */
  async commit(writes: Writes = {}): Promise<Set<string>> {
    const added = await this.store.commit(this.olmWrites(writes));
    this.olm.clearDirty();
    return added;
  }
}
