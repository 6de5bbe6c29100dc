/**
 * Group sends in the outbox (mirrors src/porch/client/core/group_send.py; spec A, E). An
 * outbox item whose recipient is `g:<group id>` goes to the group's member accounts as this
 * device last fetched them. The outbox claims keys for member devices without an Olm session
 * (one ClaimKeys per account), then `frames` builds, in order:
 *
 * 1. the key shares GroupCrypto.prepare says are owed: `send` frames with per-device Olm
 *    ciphertexts of the `group_key` content and their own ids. The server checks whole
 *    accounts, so a share frame names every ready device of each account that owes one;
 *    devices that hold the session already keep their first copy;
 * 2. the message: one `send` naming every member device without a body of its own and the
 *    kind-2 body as `shared` (stored once by the server).
 *
 * Both leave on one connection in that order, and the server commits one connection's sends
 * in order, so a member's backlog holds the key before the message. A share counts as given
 * once its `sent` arrives (`onSent`); until then this connection treats it as given.
 */

import { decodeContent } from "../crypto/content";
import { b64encode } from "../protocol/codec";
import type { Destination, DeviceMessage, SendFrame } from "../protocol/frames.gen";
import type { Action, ClaimKeys } from "./actions";
import type { CoreState } from "./context";
import { type GroupCrypto, deviceKey } from "./group_crypto";
import * as frames from "./frames";
import { ttlLeft } from "./outbox_ttl";
import type { OutboxItem, PeerDeviceRow } from "./types";

export const GROUP_PREFIX = "g:";
export const KIND_MEGOLM = 2;
export const MAX_DESTINATIONS = 1000;
export const MAX_DEVICES_PER_SEND = 5000;
// Ciphertext characters per share frame: well under the server's 512 KiB frame limit.
export const SHARE_FRAME_BUDGET = 400 * 1024;
const DEVICE_ENTRY_OVERHEAD = 96;

export function groupOf(recipient: string): string | null {
  return recipient.startsWith(GROUP_PREFIX) ? recipient.slice(GROUP_PREFIX.length) : null;
}

function isLeave(content: Uint8Array): boolean {
  try {
    const c = decodeContent(content);
    return c.t === "group_update" && c.action === "leave";
  } catch {
    return false;
  }
}

/** What GroupSends needs of the 1:1 outbox. */
export interface OutboxPart {
  claimFor(item: OutboxItem, account: string): Promise<ClaimKeys | null>;
  encryptTo(
    account: string,
    devices: readonly PeerDeviceRow[],
    content: Uint8Array,
  ): Promise<DeviceMessage[]>;
  fail(item: OutboxItem, code: string, message: string): Promise<Action[]>;
}

interface Share {
  groupId: string;
  sessionId: string;
  devices: string[];
}

export class GroupSends {
  readonly #shares = new Map<string, Share>(); // share frame id -> what it carries
  readonly #given = new Map<string, Set<string>>(); // "group|session" -> devices given
  readonly #claimed = new Map<string, Set<string>>(); // item -> accounts claimed this pass
  #ids = 0;

  constructor(
    private readonly state: CoreState,
    readonly crypto: GroupCrypto,
    private readonly outbox: OutboxPart,
  ) {}

  /** A new connection: unanswered shares may never have been stored; share again. */
  reset(): void {
    this.#shares.clear();
    this.#given.clear();
    this.#claimed.clear();
  }

  /** The member accounts an item goes to ([] when this account is not a member). This
   * account is included only when it has other devices known here. */
  async accounts(item: OutboxItem): Promise<string[]> {
    const gid = groupOf(item.recipient)!;
    const state = this.state;
    const group = await state.store.group(gid);
    if (!group) return [];
    const members = group.members.map((m) => m.accountId);
    const leaving = isLeave(item.content);
    if (!members.includes(state.accountId) && !(leaving && members.length)) return [];
    const others = members.filter((a) => a !== state.accountId);
    const mine = (await state.store.peerDevices(state.accountId)).some(
      (d) => !state.isMe(d.accountId, d.deviceId),
    );
    return mine ? [...others, state.accountId] : others;
  }

  async prepare(item: OutboxItem): Promise<Action[]> {
    const accounts = await this.accounts(item);
    if (!accounts.length && !(await this.#alone(item))) {
      return this.outbox.fail(item, "forbidden", "you are not a member of this group any more");
    }
    const claimed = this.#claimed.get(item.clientId) ?? new Set<string>();
    this.#claimed.set(item.clientId, claimed);
    for (const account of accounts) {
      if (claimed.has(account)) continue;
      const claim = await this.outbox.claimFor(item, account);
      if (claim) {
        claimed.add(account);
        return [claim];
      }
    }
    this.#claimed.delete(item.clientId);
    return this.frames(item, accounts);
  }

  /** Whether this account is the group's only member (a send goes nowhere, and succeeds). */
  async #alone(item: OutboxItem): Promise<boolean> {
    const group = await this.state.store.group(groupOf(item.recipient)!);
    return group?.members.length === 1 && group.members[0]!.accountId === this.state.accountId;
  }

  async #ready(account: string): Promise<PeerDeviceRow[]> {
    const state = this.state;
    return (await state.store.peerDevices(account)).filter(
      (d) => !state.isMe(account, d.deviceId) && state.olm.hasSession([account, d.deviceId]),
    );
  }

  /** The share frames, then the message frame ([] when no other device exists). */
  async frames(item: OutboxItem, accounts: string[]): Promise<Action[]> {
    const gid = groupOf(item.recipient)!;
    const byAccount = new Map<string, PeerDeviceRow[]>();
    for (const a of accounts) {
      const rows = await this.#ready(a);
      if (rows.length) byAccount.set(a, rows);
    }
    const devices = [...byAccount.values()].flat();
    const plan = await this.crypto.prepare(gid, devices, this.state.clock());
    const givenKey = `${gid}|${plan.sessionId}`;
    const given = this.#given.get(givenKey) ?? new Set<string>();
    this.#given.set(givenKey, given);
    const owed = plan.shares.filter((s) => !given.has(deviceKey(s.accountId, s.deviceId)));
    const out: Action[] = [];
    if (owed.length) {
      const owing = [...new Set(owed.map((s) => s.accountId))].sort();
      for (const frame of await this.#shareFrames(
        gid,
        plan.sessionId,
        owing,
        byAccount,
        owed[0]!.content,
      ))
        out.push({ type: "SendFrame", frame, clientId: null });
    }
    if (!byAccount.size) return out; // the caller settles the item: nobody else to tell
    const body = b64encode(await this.crypto.encrypt(gid, item.content));
    const destinations = [...byAccount].map(([a, rows]) =>
      frames.destination(
        a,
        rows.map((d) => ({ device: d.deviceId, registration: d.registrationId })),
      ),
    );
    const frame: SendFrame = {
      ...frames.send(item.clientId, destinations),
      shared: { kind: KIND_MEGOLM, body },
    };
    // A disappearing group text: the server keeps it no longer than its time left (spec §7;
    // the outbox failed it as expired before this if none was left).
    const ttl = ttlLeft(item, this.state.clock());
    if (ttl !== undefined) frame.ttl = Math.max(1, ttl);
    out.push({ type: "SendFrame", frame, clientId: item.clientId });
    return out;
  }

  async #shareFrames(
    gid: string,
    sessionId: string,
    accounts: string[],
    byAccount: Map<string, PeerDeviceRow[]>,
    content: Uint8Array,
  ): Promise<SendFrame[]> {
    const out: SendFrame[] = [];
    let batch: Destination[] = [];
    let carried: string[] = [];
    let size = 0;
    let count = 0;
    const close = () => {
      if (!batch.length) return;
      this.#ids += 1;
      const id = `gk${this.#ids}x${this.state.clock() % 1e9}`;
      this.#shares.set(id, { groupId: gid, sessionId, devices: carried });
      const given = this.#given.get(`${gid}|${sessionId}`)!;
      for (const d of carried) given.add(d);
      out.push(frames.send(id, batch));
      batch = [];
      carried = [];
      size = 0;
      count = 0;
    };
    for (const account of accounts) {
      const rows = byAccount.get(account)!;
      const entries = await this.outbox.encryptTo(account, rows, content);
      const cost = entries.reduce((n, e) => n + (e.body?.length ?? 0) + DEVICE_ENTRY_OVERHEAD, 0);
      if (
        batch.length &&
        (size + cost > SHARE_FRAME_BUDGET ||
          batch.length >= MAX_DESTINATIONS ||
          count + entries.length > MAX_DEVICES_PER_SEND)
      )
        close();
      batch.push(frames.destination(account, entries));
      carried.push(...rows.map((d) => deviceKey(account, d.deviceId)));
      size += cost;
      count += entries.length;
    }
    close();
    return out;
  }

  // The server's answers to share frames --------------------------------------------------

  /** True when `frameId` was a share frame (its devices now hold the session). */
  async onSent(frameId: string): Promise<boolean> {
    const share = this.#shares.get(frameId);
    if (!share) return false;
    this.#shares.delete(frameId);
    await this.crypto.markShared(share.groupId, share.sessionId, share.devices);
    return true;
  }

  /** True when `frameId` was a share frame. A device list error refuses the message too (the
   * retry shares again); any other refusal starts a new session on the next send. */
  async onError(frameId: string, deviceError: boolean): Promise<boolean> {
    const share = this.#shares.get(frameId);
    if (!share) return false;
    this.#shares.delete(frameId);
    const given = this.#given.get(`${share.groupId}|${share.sessionId}`);
    for (const d of share.devices) given?.delete(d);
    if (!deviceError) await this.crypto.memberRemoved(share.groupId);
    return true;
  }
}
