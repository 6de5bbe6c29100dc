/**
 * The send side: outbox items -> encrypted `send` frames, and the server's answers (mirrors
 * src/porch/client/core/outbox.py). Durable first, network second: items come from the
 * stored outbox in order, at most MAX_INFLIGHT unanswered. Preparing one needs a session
 * with every current device of each destination account (the recipient and, for what is
 * copied, one's own: ./link_copies); when one is missing (or the server named devices we did
 * not know), `prepare` returns one ClaimKeys per account and the runner feeds each claimed
 * bundle back through `keysClaimed`; the item is encrypted once every claim is answered.
 */

import { b64encode } from "../protocol/codec";
import { CryptoError } from "../crypto/errors";
import type { DeviceMessage } from "../protocol/frames.gen";
import { type Action, type ClaimKeys, emit, wake } from "./actions";
import type { CoreState } from "./context";
import { ClientError, IdentityError } from "./errors";
import * as frames from "./frames";
import { type GroupSends, groupOf } from "./group_send";
import { cacheDirectory, startSessions } from "./keys";
import { destinationsFor, isOwnCopy, sentCopy } from "./link_copies";
import type { Bundle, OutboxItem, PeerDeviceRow } from "./types";
import { pauseIfUnaccepted } from "./outbox_paused";
import { EXPIRED, ttlLeft } from "./outbox_ttl";

export const MAX_INFLIGHT = 128;

export const CLAIM_RETRY_DELAY = 1.0;
const PERMANENT_SEND_ERRORS = new Set([
  "unknown_recipient",
  "bad_frame",
  "frame_too_large",
  "forbidden",
]);
const DEVICE_SEND_ERRORS = new Set(["mismatched_devices", "stale_devices"]);
const PERMANENT_CLAIM_ERRORS = new Set([
  "not_found",
  "bad_request",
  "identity",
  "unknown_recipient",
]);
const MAX_FIX_IDS = 64; // the protocol's bound per list (AccountDevices)
const MAX_FIX_ACCOUNTS = 1000;

interface DeviceFix {
  missing: Set<number>;
  extra: Set<number>;
  stale: Set<number>;
}

function ids(value: unknown): number[] {
  return Array.isArray(value) ? value.slice(0, MAX_FIX_IDS).filter((d) => Number.isInteger(d)) : [];
}

export class Outbox {
  readonly inflight = new Map<string, OutboxItem>();
  cursor = 0; // the highest outbox seq sent on this connection
  readonly #fixes = new Map<string, DeviceFix>();
  groups: GroupSends | null = null; // set by ClientCore.enableGroups
  readonly #claiming = new Map<string, Set<string>>(); // client id -> accounts still claimed
  #ownKnown = false; // one's own other devices were listed once (so a sent copy finds them)

  constructor(private readonly state: CoreState) {}

  reset(): void {
    this.inflight.clear();
    this.cursor = 0;
    this.groups?.reset();
  }

  /** One's own devices changed (a device linked while this one runs): list them again before
   * the next sent copy, so the new one gets copies (outbox.py `own_devices_changed`). */
  ownDevicesChanged(): void {
    this.#ownKnown = false;
  }

  async nextItems(): Promise<OutboxItem[]> {
    const room = MAX_INFLIGHT - this.inflight.size;
    if (room <= 0) return [];
    const items = await this.state.store.pending(this.cursor, room);
    return items.filter((i) => !this.inflight.has(i.clientId));
  }

  /** A 1:1 item: encrypt for every current device of each destination account
   * (./link_copies), or ask for the keys that are missing first: one ClaimKeys per account.
   * A group item goes to ./group_send. */
  async prepare(item: OutboxItem): Promise<Action[]> {
    if (ttlLeft(item, this.state.clock()) === 0) return this.#expire(item);
    if (groupOf(item.recipient) !== null) return this.#prepareGroup(item);
    // Paused before any claim, so a held text takes no one-time key (outbox.py prepare).
    const paused = await this.#pauseIfUnaccepted(item);
    if (paused.length) return paused;
    const claims: ClaimKeys[] = [];
    for (const account of destinationsFor(this.state, item)) {
      const claim = await this.claimFor(item, account);
      if (claim) claims.push(claim);
    }
    if (!claims.length) return this.#encrypt(item);
    this.#claiming.set(item.clientId, new Set(claims.map((c) => c.account)));
    return claims;
  }

  /** A group item (./group_send): its claims, or its frames (the message frame in flight). */
  async #prepareGroup(item: OutboxItem): Promise<Action[]> {
    if (!this.groups) return this.fail(item, "unsupported", "groups are not enabled here");
    const actions = await this.groups.prepare(item);
    if (actions.some((a) => a.type === "ClaimKeys" || a.type === "SendSettled")) return actions;
    if (actions.some((a) => a.type === "SendFrame" && a.clientId === item.clientId)) {
      this.inflight.set(item.clientId, item);
      this.cursor = Math.max(this.cursor, item.seq);
      return actions;
    }
    // No other member device: the item is done (as the Python outbox settles it).
    this.inflight.set(item.clientId, item);
    return [...actions, ...(await this.onSent({ id: item.clientId, ts: this.state.clock() }))];
  }

  /** Whether `account` gets a sent copy of a 1:1 item (never for groups: one's own other
   * devices are members there and get the group message itself). */
  #ownCopy(item: OutboxItem, account: string): boolean {
    return groupOf(item.recipient) === null && isOwnCopy(this.state, item, account);
  }

  async claimFor(item: OutboxItem, account: string): Promise<ClaimKeys | null> {
    const state = this.state;
    const own = this.#ownCopy(item, account);
    const fix = this.#fixes.get(account);
    this.#fixes.delete(account);
    const devices = new Map((await state.store.peerDevices(account)).map((d) => [d.deviceId, d]));
    if (fix) {
      const drop = [...fix.extra, ...fix.stale];
      for (const d of drop) {
        state.olm.forgetPeer([account, d]);
        devices.delete(d);
      }
      if (drop.length) await state.commit({ dropDevices: drop.map((d) => [account, d]) });
    }
    const need = new Set<number>();
    for (const d of devices.keys()) {
      if (state.isMe(account, d)) continue;
      const key = `${account}/${d}`;
      if (!state.olm.hasSession([account, d]) || state.renew.has(key)) need.add(d);
    }
    for (const d of [...(fix?.missing ?? []), ...(fix?.stale ?? [])]) need.add(d);
    if (own && !this.#ownKnown)
      return { type: "ClaimKeys", item, account, devices: null, listing: true };
    if (!devices.size && !need.size && !own)
      return { type: "ClaimKeys", item, account, devices: null };
    if (need.size) {
      return { type: "ClaimKeys", item, account, devices: [...need].sort((a, b) => a - b) };
    }
    return null;
  }

  async keysClaimed(claim: ClaimKeys, bundle: Bundle): Promise<Action[]> {
    if (claim.listing) return this.#ownListed(claim, bundle);
    const group = groupOf(claim.item.recipient) !== null;
    try {
      if (bundle.accountId !== claim.account) {
        throw new IdentityError("the key directory answered for another account");
      }
      await startSessions(this.state, bundle);
    } catch (exc) {
      if (!(exc instanceof ClientError) && !(exc instanceof CryptoError)) throw exc;
      // One member's keys failing must not stop the group: that member is left out.
      if (group) return this.#prepareGroup(claim.item);
      // Sent copies are a courtesy: the message goes without them.
      if (this.#ownCopy(claim.item, claim.account)) return this.#claimDone(claim);
      this.#claiming.delete(claim.item.clientId);
      return this.fail(claim.item, exc.code, exc.message);
    }
    if (group) {
      for (const d of claim.devices ?? []) this.state.renew.delete(`${claim.account}/${d}`);
      return this.#prepareGroup(claim.item);
    }
    for (const d of claim.devices ?? []) this.state.renew.delete(`${claim.account}/${d}`);
    return this.#claimDone(claim);
  }

  /** One's own devices, listed: claim keys of the other ones without a session. */
  async #ownListed(claim: ClaimKeys, bundle: Bundle): Promise<Action[]> {
    const state = this.state;
    this.#ownKnown = true;
    try {
      if (bundle.accountId !== claim.account)
        throw new IdentityError("the key directory answered for another account");
      await cacheDirectory(state, bundle, false);
    } catch (exc) {
      if (!(exc instanceof IdentityError)) throw exc;
      return this.#claimDone(claim); // no sent copies this time
    }
    const need = (await state.store.peerDevices(claim.account))
      .map((d) => d.deviceId)
      .filter((d) => !state.isMe(claim.account, d) && !state.olm.hasSession([claim.account, d]))
      .sort((a, b) => a - b);
    if (need.length && this.#claiming.has(claim.item.clientId))
      return [{ type: "ClaimKeys", item: claim.item, account: claim.account, devices: need }];
    return this.#claimDone(claim);
  }

  /** One account's claim is answered: encrypt once every account's is. */
  async #claimDone(claim: ClaimKeys): Promise<Action[]> {
    if (claim.account === this.state.accountId) this.#ownKnown = true;
    const waiting = this.#claiming.get(claim.item.clientId);
    if (!waiting) return []; // another claim of the item failed it or paused the outbox
    waiting.delete(claim.account);
    if (waiting.size) return []; // the other accounts' claims are still out
    this.#claiming.delete(claim.item.clientId);
    return this.#encrypt(claim.item);
  }

  async keysClaimFailed(claim: ClaimKeys, error: ClientError): Promise<Action[]> {
    if (this.#ownCopy(claim.item, claim.account)) return this.#claimDone(claim);
    this.#claiming.delete(claim.item.clientId);
    if (PERMANENT_CLAIM_ERRORS.has(error.code)) {
      if (groupOf(claim.item.recipient) !== null) return this.#prepareGroup(claim.item);
      return this.fail(claim.item, error.code, error.message);
    }
    return [{ type: "PauseOutbox", delay: CLAIM_RETRY_DELAY }];
  }

  async #pauseIfUnaccepted(item: OutboxItem): Promise<Action[]> {
    const paused = await pauseIfUnaccepted(this.state, item);
    if (paused.length) this.inflight.delete(item.clientId);
    return paused;
  }

  async #readyDevices(account: string): Promise<PeerDeviceRow[]> {
    const state = this.state;
    return (await state.store.peerDevices(account)).filter(
      (d) => !state.isMe(account, d.deviceId) && state.olm.hasSession([account, d.deviceId]),
    );
  }

  async #encrypt(item: OutboxItem): Promise<Action[]> {
    // The claim is often where a changed key shows first (a stale device, then new keys):
    // a text to a verified contact whose key changed waits (./outbox_paused).
    const paused = await this.#pauseIfUnaccepted(item);
    if (paused.length) return paused;
    if (item.recipient === this.state.accountId) return this.#toSelf(item);
    const targets = await this.#readyDevices(item.recipient);
    if (!targets.length) {
      return this.fail(
        item,
        "send_failed",
        `${item.recipient.slice(0, 8)} has no device that can receive messages`,
      );
    }
    const ttl = ttlLeft(item, this.state.clock());
    if (ttl === 0) return this.#expire(item); // the key claims took longer than the timer
    const messages = await this.encryptTo(item.recipient, targets, item.content);
    const destinations = [frames.destination(item.recipient, messages)];
    const copy = sentCopy(this.state, item);
    const own = copy ? await this.#readyDevices(this.state.accountId) : [];
    if (copy && own.length) {
      // The sent copy (spec D) for one's own other devices, in the same frame.
      const copies = await this.encryptTo(this.state.accountId, own, copy);
      destinations.push(frames.destination(this.state.accountId, copies));
    }
    this.inflight.set(item.clientId, item);
    this.cursor = Math.max(this.cursor, item.seq);
    const frame = frames.send(item.clientId, destinations);
    if (ttl !== undefined) frame.ttl = ttl; // a disappearing text: the time it has left
    return [{ type: "SendFrame", frame, clientId: item.clientId }];
  }

  /** A note to self (mirrors Outbox._to_self in the SDK): one's other devices get it as a
   * sent copy; with no other device it is done at once. */
  async #toSelf(item: OutboxItem): Promise<Action[]> {
    const ttl = ttlLeft(item, this.state.clock());
    if (ttl === 0) return this.#expire(item);
    const copy = sentCopy(this.state, item);
    const own = copy ? await this.#readyDevices(this.state.accountId) : [];
    this.inflight.set(item.clientId, item);
    this.cursor = Math.max(this.cursor, item.seq);
    if (!copy || !own.length) return this.onSent({ id: item.clientId, ts: this.state.clock() });
    const copies = await this.encryptTo(this.state.accountId, own, copy);
    const frame = frames.send(item.clientId, [frames.destination(this.state.accountId, copies)]);
    if (ttl !== undefined) frame.ttl = ttl;
    return [{ type: "SendFrame", frame, clientId: item.clientId }];
  }

  /** Encrypt to each device; the moved ratchets are stored before the ciphertext leaves. */
  async encryptTo(
    recipient: string,
    devices: readonly PeerDeviceRow[],
    content: Uint8Array,
  ): Promise<DeviceMessage[]> {
    const out = devices.map((d) => {
      const ct = this.state.olm.encrypt([recipient, d.deviceId], content);
      return frames.ciphertext(d.deviceId, d.registrationId, ct.kind, b64encode(ct.body));
    });
    await this.state.commit();
    return out;
  }

  /** The frame for `clientId` never left (the connection changed): send it again. */
  notSent(clientId: string): void {
    const item = this.inflight.get(clientId);
    this.inflight.delete(clientId);
    if (item) this.cursor = Math.min(this.cursor, item.seq - 1);
  }

  async onSent(frame: Record<string, unknown>): Promise<Action[]> {
    const clientId = String(frame.id);
    if (await this.groups?.onSent(clientId)) return [];
    const item = this.inflight.get(clientId);
    this.inflight.delete(clientId);
    const ts = Number.isInteger(frame.ts) && (frame.ts as number) >= 0 ? (frame.ts as number) : 0;
    if (item) {
      await this.state.store.commit({
        dequeue: [clientId],
        statuses: item.isText
          ? [
              {
                peer: item.recipient,
                ids: [clientId],
                outgoing: true,
                status: "sent",
                serverTs: ts,
              },
            ]
          : [],
      });
    }
    const out: Action[] = [{ type: "SendSettled", clientId, ts, error: null }];
    if (item) out.push(wake());
    return out;
  }

  async onError(frame: Record<string, unknown>): Promise<Action[]> {
    const code = String(frame.code);
    const ref = typeof frame.ref === "string" ? frame.ref : null;
    if (ref && (await this.groups?.onError(ref, DEVICE_SEND_ERRORS.has(code)))) return [];
    const item = ref ? this.inflight.get(ref) : undefined;
    if (!item) return [];
    this.inflight.delete(item.clientId);
    if (DEVICE_SEND_ERRORS.has(code)) {
      this.#recordFixes(frame.accounts);
      return this.#requeue(item, 0);
    }
    if (PERMANENT_SEND_ERRORS.has(code)) return this.fail(item, code, String(frame.message));
    // Rate limited, unavailable, internal: try again.
    const delay = frame.retry_after;
    const ok = typeof delay === "number" && delay >= 0 && delay <= 3600;
    return this.#requeue(item, ok ? delay : 1);
  }

  #recordFixes(accounts: unknown): void {
    if (!Array.isArray(accounts)) return;
    for (const entry of accounts.slice(0, MAX_FIX_ACCOUNTS)) {
      if (typeof entry !== "object" || entry === null || typeof entry.account !== "string")
        continue;
      const fix = this.#fixes.get(entry.account) ?? {
        missing: new Set(),
        extra: new Set(),
        stale: new Set(),
      };
      for (const d of ids(entry.missing)) fix.missing.add(d);
      for (const d of ids(entry.extra)) fix.extra.add(d);
      for (const d of ids(entry.stale)) fix.stale.add(d);
      this.#fixes.set(entry.account, fix);
    }
  }

  #requeue(item: OutboxItem, delay: number): Action[] {
    this.cursor = Math.min(this.cursor, item.seq - 1);
    return [wake(delay)];
  }

  /** A disappearing message whose timer ran out before it left (outbox.py `_expire`, spec
   * §7): failed with code `expired`; `fail` drops its outbox row, content and all. */
  #expire(item: OutboxItem): Promise<Action[]> {
    return this.fail(item, "expired", EXPIRED);
  }

  async fail(item: OutboxItem, code: string, message: string): Promise<Action[]> {
    this.inflight.delete(item.clientId);
    await this.state.store.commit({
      dequeue: [item.clientId],
      statuses: item.isText
        ? [{ peer: item.recipient, ids: [item.clientId], outgoing: true, status: "failed" }]
        : [],
    });
    return [
      { type: "SendSettled", clientId: item.clientId, ts: 0, error: code },
      emit({
        type: "SendFailedEvent",
        id: item.clientId,
        recipient: item.recipient,
        code,
        message,
      }),
    ];
  }
}
