/**
 * The receive path: envelope -> checks -> keys -> decrypt -> content handler (mirrors
 * src/porch/client/core/receive.py). Store first, acknowledge second: an envelope id is
 * queued for `ack` only after the commit that stored its content and marked it seen.
 *
 * When the sender device's keys are not cached, the envelope is parked and a FetchKeys goes
 * out; the sender's later envelopes queue behind it (their order is kept), other senders'
 * are handled at once. Parked envelopes are not acknowledged, so the server's delivery window
 * is the back-pressure; MAX_PARKED bounds them all the same.
 */

import { b64decode } from "../protocol/codec";
import { wake } from "./actions";
import { CryptoError } from "../crypto/errors";
import { decodeContent } from "../crypto/content";
import type { CoreState } from "./context";
import { ClientError, IdentityError } from "./errors";
import type { Envelope, Handlers } from "./handlers";
import { cacheDirectory, findDevice } from "./keys";
import { RequestLimiter, placeholderText, retryRequest } from "./retry";
import type { Bundle, PeerDeviceRow, StoredMessage, Writes } from "./types";

export const MAX_PARKED = 256; // the server's default delivery window
export const MAX_ENVELOPE_ID = 2 ** 53 - 1;
export const MAX_DEVICE_ID = 2 ** 31 - 1;
const ACCOUNT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function isInt(value: unknown, low = 0, high = Number.MAX_SAFE_INTEGER): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= low && value <= high;
}

export const REFETCH_INTERVAL_MS = 60_000; // at most one refetch per sender device per minute
export const MAX_REFETCH_TRACKED = 1024;

interface Parked {
  env: Envelope;
  kind: number;
  body: string;
  // Set on the envelope whose failure asked for fresh keys: the key it failed with, and why.
  failedWith?: { curve25519: string; reason: string };
}

/** The history line of a message that could not be decrypted (under `peer`); `asked`: a
 * resend was asked for (core/retry.ts). */
export function placeholder(env: Envelope, peer: string, asked = false): StoredMessage {
  return {
    peer,
    clientId: `undecryptable-${env.device}-${env.ts}`,
    outgoing: false,
    device: env.device,
    ts: env.ts,
    body: placeholderText(asked),
    status: "undecryptable",
    serverTs: env.ts,
    unread: false,
  };
}

export class Receiver {
  readonly #parked = new Map<string, Parked[]>(); // by sender, oldest first
  readonly #fetching = new Map<string, { token: number; fresh: boolean }>(); // the head's fetch
  readonly #refetched = new Map<string, number>(); // "sender/device" -> when its keys were refetched
  readonly #requests = new RequestLimiter(); // retry requests sent, per sender device
  #tokens = 0;
  // Kind-2 (Megolm) envelopes go here once groups are on (ClientCore.enableGroups).
  groupTake: ((env: Envelope, body: string) => Promise<void>) | null = null;

  constructor(
    private readonly state: CoreState,
    private readonly handlers: Handlers,
    private readonly maxParked = MAX_PARKED,
  ) {}

  get parked(): number {
    let n = 0;
    for (const q of this.#parked.values()) n += q.length;
    return n;
  }

  /** The connection is gone: what was parked was not acknowledged, so it comes again. */
  reset(): void {
    this.#parked.clear();
    this.#fetching.clear();
  }

  /** One envelope; one that cannot be taken is rejected and reported, never stops the queue. */
  async take(frame: unknown): Promise<void> {
    const state = this.state;
    if (typeof frame !== "object" || frame === null) return;
    const f = frame as Record<string, unknown>;
    if (!isInt(f.id, 0, MAX_ENVELOPE_ID)) return; // nothing to reject
    const sender = typeof f.from === "string" ? f.from : "";
    const device = isInt(f.from_device) ? f.from_device : 0;
    if (f.too_large === true) {
      state.refuse(f.id, "too_large", sender, device);
      return;
    }
    if (
      !ACCOUNT_ID.test(sender) ||
      !isInt(f.from_device, 1, MAX_DEVICE_ID) ||
      !isInt(f.ts) ||
      !isInt(f.kind) ||
      typeof f.body !== "string"
    ) {
      state.refuse(f.id, "malformed", sender, device);
      return;
    }
    const item: Parked = {
      env: { id: f.id, ts: f.ts, sender, device: f.from_device },
      kind: f.kind,
      body: f.body,
    };
    if (item.env.id && (await state.store.seen(item.env.id))) {
      state.ack(item.env.id); // redelivered: it was stored already
      return;
    }
    const queue = this.#parked.get(sender);
    if (queue) {
      if (this.parked >= this.maxParked) return this.#overflow();
      queue.push(item);
      return;
    }
    await this.#guarded(item, false);
  }

  #overflow(): void {
    this.reset();
    this.state.out.push({ type: "Reconnect", reason: "too many envelopes wait for keys" });
  }

  async keysFetched(account: string, token: number, bundle: Bundle): Promise<void> {
    const fetch = this.#fetching.get(account);
    if (fetch?.token !== token) return; // for a connection that is gone
    this.#fetching.delete(account);
    const head = this.#parked.get(account)!.shift()!;
    try {
      if (bundle.accountId !== account) {
        throw new IdentityError(
          `the key directory answered for another account than ${account.slice(0, 8)}`,
        );
      }
      await cacheDirectory(this.state, bundle, fetch.fresh);
    } catch (exc) {
      if (!(exc instanceof IdentityError)) throw exc;
      await this.#undecryptable(head.env, exc.message);
      return this.#resume(account);
    }
    await this.#guarded(head, true);
    return this.#resume(account);
  }

  async keysFetchFailed(account: string, token: number, error: ClientError): Promise<void> {
    if (this.#fetching.get(account)?.token !== token) return;
    if (error instanceof IdentityError || error.code === "not_found") {
      // The sender has no keys (any more), or none that verify: it never will.
      this.#fetching.delete(account);
      await this.#undecryptable(this.#parked.get(account)!.shift()!.env, error.message);
      return this.#resume(account);
    }
    // Transient: leave them unacknowledged and reconnect, so they come again.
    this.reset();
    this.state.out.push({
      type: "Reconnect",
      reason: `cannot fetch the sender's keys: ${error.message}`,
    });
  }

  async #resume(account: string): Promise<void> {
    const queue = this.#parked.get(account);
    while (queue?.length) {
      const head = queue.shift()!;
      if (!(await this.#guarded(head, false, true))) return; // parked again at the head
    }
    this.#parked.delete(account);
  }

  /** Handle one; false when it was parked (waits for keys). */
  async #guarded(item: Parked, fetched: boolean, queued = false): Promise<boolean> {
    try {
      return await this.#handle(item, fetched, queued);
    } catch {
      // A bug or bad data: the same bytes would fail again; reject, never loop.
      this.state.refuse(item.env.id, "unprocessable", item.env.sender, item.env.device);
      return true;
    }
  }

  #park(item: Parked, queued: boolean, fresh = false): boolean {
    const sender = item.env.sender;
    if (!queued && this.parked >= this.maxParked) {
      this.#overflow();
      return true;
    }
    const queue = this.#parked.get(sender) ?? [];
    queue.unshift(item);
    this.#parked.set(sender, queue);
    this.#fetching.set(sender, { token: ++this.#tokens, fresh });
    const reason = fresh ? "refetch" : "unknown_device";
    this.state.out.push({ type: "FetchKeys", account: sender, token: this.#tokens, reason });
    return false;
  }

  async #handle(item: Parked, fetched: boolean, queued: boolean): Promise<boolean> {
    const env = item.env;
    if (item.kind === 2 && this.groupTake) {
      await this.groupTake(env, item.body);
      return true;
    }
    if (item.kind !== 0 && item.kind !== 1) {
      // Group (Megolm, kind 2) messages are not taken by this version yet.
      await this.#undecryptable(env, `message kind ${item.kind} is not supported by this client`);
      return true;
    }
    const device = await findDevice(this.state, env.sender, env.device);
    if (!device) {
      if (fetched) {
        await this.#undecryptable(
          env,
          `${env.sender.slice(0, 8)} has no device ${env.device} in the key directory`,
        );
        return true;
      }
      return this.#park(item, queued);
    }
    const failed = item.failedWith;
    delete item.failedWith;
    if (failed) {
      // The answer to a refetch: only keys that changed can decrypt it now.
      if (device.curve25519 !== failed.curve25519)
        await this.#decryptAndDeliver(env, device, item, true);
      else await this.#undecryptable(env, failed.reason, true); // a lost or broken session
      return true;
    }
    const reason = await this.#decryptAndDeliver(env, device, item, false);
    if (reason === null) return true;
    if (!fetched && this.#mayRefetch(env)) {
      // The cached keys may be stale (the sender registered again): as Signal does, fetch
      // them afresh and, if they changed, decrypt again.
      item.failedWith = { curve25519: device.curve25519, reason };
      return this.#park(item, queued, true);
    }
    await this.#undecryptable(env, reason, true);
    return true;
  }

  #mayRefetch(env: Envelope): boolean {
    const key = `${env.sender}/${env.device}`;
    const now = this.state.clock();
    const last = this.#refetched.get(key);
    if (last !== undefined && now - last < REFETCH_INTERVAL_MS) return false;
    if (this.#refetched.size >= MAX_REFETCH_TRACKED) this.#refetched.clear();
    this.#refetched.set(key, now);
    return true;
  }

  /** Decrypt and deliver; a decryption failure returns its reason unless `final`. */
  async #decryptAndDeliver(
    env: Envelope,
    device: PeerDeviceRow,
    item: Parked,
    final: boolean,
  ): Promise<string | null> {
    const state = this.state;
    let plaintext: Uint8Array;
    try {
      plaintext = state.olm.decrypt([env.sender, env.device], device.curve25519, {
        kind: item.kind,
        body: b64decode(item.body),
      });
    } catch (exc) {
      if (!(exc instanceof CryptoError)) throw exc;
      if (!final) return exc.message;
      await this.#undecryptable(env, exc.message, true);
      return null;
    }
    let content;
    try {
      content = decodeContent(plaintext);
    } catch (exc) {
      await this.#undecryptable(env, (exc as Error).message); // a resend carries the same
      return null;
    }
    const handler = this.handlers.forContent(content);
    const writes: Writes = { seen: env.id ? [[env.id, env.ts]] : [] };
    const key = await handler.persist(state, env, content, writes);
    const added = await state.commit(writes);
    state.ack(env.id);
    await handler.react(state, env, content, key !== null && added.has(key));
    return null;
  }

  /** `requestRetry`: a resend may help (the content did not decrypt; docs/protocol.md,
   * section 6 step 10). Keys that do not verify, an unknown device and a malformed content
   * get the placeholder but no request. */
  async #undecryptable(env: Envelope, reason: string, requestRetry = false): Promise<void> {
    // Acknowledged all the same (the same bytes never decrypt later), but never silently:
    // history keeps a placeholder, the application is told and, where a resend can help,
    // the sender is asked for one (core/retry.ts), in the same commit as the placeholder.
    const state = this.state;
    const request = requestRetry
      ? retryRequest(state, this.#requests, env.sender, env.device, env.ts)
      : null;
    await state.commit({
      seen: env.id ? [[env.id, env.ts]] : [],
      messages: [placeholder(env, env.sender, request !== null)],
      ...(request ? { enqueue: [request] } : {}),
    });
    state.ack(env.id);
    if (request) state.out.push(wake());
    state.emit({
      type: "DecryptionFailed",
      sender: env.sender,
      device: env.device,
      reason,
      retryRequested: request !== null,
    });
  }
}
