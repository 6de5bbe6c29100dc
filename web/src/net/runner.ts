/**
 * The I/O layer around the client core (mirrors src/porch/client/runner.py): it connects and
 * authenticates (reconnecting with backoff), feeds each frame to the core and carries out the
 * actions that come back: frames onto the socket, events to the UI, key fetches and claims
 * over HTTP, whose answers go back to the core. Core calls run one at a time (`#serial`):
 * the core's methods await the store, and two interleaved would see each other's half-state.
 */

import type { Action, ClaimKeys, FetchGroup, FetchKeys, SendFrame } from "../core/actions";
import { ClientError, IdentityError } from "../core/errors";
import type { Event } from "../core/events";
import type { ClientCore } from "../core/state";
import { GroupApi } from "./group_api";
import { Groups } from "./groups";
import type { HttpApi } from "./http";
import {
  CLOSE_AUTH,
  CLOSE_REPLACED,
  ConnectionClosed,
  backoff,
  decodeFrame,
  firstFrame,
  openSocket,
} from "./socket";

export const ACK_DELAY_MS = 20;
export type ConnectionState = "connecting" | "online" | "offline" | "ended";

export class Runner {
  ws: WebSocket | null = null;
  generation = 0;
  state: ConnectionState = "offline";
  #lock: Promise<unknown> = Promise.resolve();
  #stopped = false;
  #flushTimer: ReturnType<typeof setTimeout> | null = null;
  #outboxRunning = false;
  #outboxAgain = false;
  #wakeTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly core: ClientCore,
    readonly api: HttpApi,
    private readonly wsUrl: string,
    private readonly password: string,
    private readonly onEvent: (event: Event) => void,
    private readonly onState: (state: ConnectionState, detail: string) => void,
  ) {}

  /** Run `fn` after every core call before it. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#lock.then(fn, fn);
    this.#lock = next.catch(() => undefined);
    return next;
  }

  #setState(state: ConnectionState, detail = ""): void {
    this.state = state;
    this.onState(state, detail);
  }

  start(): void {
    void this.#connectionLoop();
  }

  stop(): void {
    this.#stopped = true;
    this.ws?.close(1000);
  }

  // Actions -------------------------------------------------------------------------------

  /** Carry out every action; frames go on the current socket. */
  perform(actions: Action[]): void {
    for (const action of actions) {
      switch (action.type) {
        case "SendFrame":
          this.#sendFrame(action);
          break;
        case "EmitEvent":
          this.onEvent(action.event);
          break;
        case "WakeOutbox":
          this.wakeOutbox(action.delay);
          break;
        case "FetchKeys":
          void this.#fetchKeys(action, this.generation);
          break;
        case "TopUpKeys":
          void this.#topUpKeys();
          break;
        case "FetchGroup":
          void this.#fetchGroup(action);
          break;
        case "RotateStateKey":
          new Groups(
            () => this,
            (a) => this.perform(a),
          )
            .rotateStateKey(action.groupId)
            .catch(() => undefined); // the next leave, or another admin, tries again
          break;
        case "ShareStateKey":
          new Groups(
            () => this,
            (a) => this.perform(a),
          )
            .shareStateKey(action.groupId)
            .catch(() => undefined); // no key here: another member's device tells it
          break;
        case "Reconnect":
          this.ws?.close(4000, "reconnect");
          break;
        case "SendSettled":
        case "ClaimKeys":
        case "PauseOutbox":
          break; // the outbox pass handles these
      }
    }
  }

  #sendFrame(action: SendFrame): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      if (action.clientId) this.core.notSent(action.clientId);
      return;
    }
    ws.send(JSON.stringify(action.frame));
  }

  async #fetchKeys(fetch: FetchKeys, generation: number): Promise<void> {
    let result: () => Promise<Action[]>;
    try {
      const bundle = await this.api.getKeys(fetch.account);
      result = () => this.core.keysFetched(fetch.account, fetch.token, bundle);
    } catch (exc) {
      const error =
        exc instanceof ClientError
          ? exc
          : new IdentityError("the key directory's answer could not be read");
      result = () => this.core.keysFetchFailed(fetch.account, fetch.token, error);
    }
    if (generation !== this.generation) return; // its connection is gone: the envelopes come again
    this.perform(await this.serial(result));
    this.#scheduleFlush();
  }

  async #fetchGroup(fetch: FetchGroup): Promise<void> {
    let result: () => Promise<Action[]>;
    try {
      const group = await new GroupApi(this.api).get(fetch.groupId);
      result = () => this.core.groupFetched(group);
    } catch (exc) {
      const error = exc instanceof ClientError ? exc : new ClientError(String(exc));
      result = () => this.core.groupFetchFailed(fetch.groupId, error);
    }
    this.perform(await this.serial(result));
  }

  async #topUpKeys(): Promise<void> {
    try {
      const count = await this.api.keyCount();
      const keys = await this.serial(() => this.core.oneTimeKeys(count));
      if (keys.length) await this.api.uploadKeys({ oneTimeKeys: keys });
    } catch {
      /* tried again on the next keys_low or connect */
    }
  }

  #scheduleFlush(): void {
    if (this.#flushTimer || !this.core.wantsFlush) return;
    this.#flushTimer = setTimeout(async () => {
      this.#flushTimer = null;
      this.perform(await this.serial(() => this.core.flush()));
      if (this.core.parked > 0) this.#scheduleFlush();
    }, ACK_DELAY_MS);
  }

  /** Send an online-only frame now (typing), if there is a connection. */
  sendNow(frame: object): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // The connection ------------------------------------------------------------------------

  async #connectionLoop(): Promise<void> {
    let attempt = 0;
    while (!this.#stopped) {
      this.#setState("connecting");
      let ws: WebSocket | null = null;
      try {
        ws = await openSocket(this.wsUrl);
        ws.send(JSON.stringify(this.core.authFrame(this.password)));
        const ready = await firstFrame(ws);
        if (ready.type === "error") {
          throw new ClientError(String(ready.message), String(ready.code));
        }
        if (ready.type !== "ready") throw new ConnectionClosed(null, "unexpected first frame");
        attempt = 0;
        this.generation += 1;
        this.ws = ws;
        const closed = this.#readLoop(ws);
        this.#setState("online");
        this.onEvent({ type: "ConnectionChanged", connected: true });
        this.perform(await this.serial(async () => this.core.connected(ready)));
        this.wakeOutbox();
        await closed;
      } catch (exc) {
        if (exc instanceof ConnectionClosed && exc.closeCode === CLOSE_REPLACED) {
          this.#setState(
            "ended",
            "this device connected from another tab or window; this one stopped",
          );
          return;
        }
        if (exc instanceof ConnectionClosed && exc.closeCode === CLOSE_AUTH) {
          this.#setState(
            "ended",
            "this device was removed, or its number registered again elsewhere; register again",
          );
          return;
        }
        if (exc instanceof ClientError) {
          this.#setState("ended", exc.message); // authentication refused: retrying cannot help
          return;
        }
      } finally {
        if (this.ws === ws) this.ws = null;
        this.core.disconnected();
        ws?.close();
      }
      if (this.state === "online") this.onEvent({ type: "ConnectionChanged", connected: false });
      this.#setState("offline", "reconnecting");
      attempt += 1;
      await new Promise((r) => setTimeout(r, backoff(attempt) * 1000));
    }
  }

  /** Resolves with the close (as a ConnectionClosed rejection). */
  #readLoop(ws: WebSocket): Promise<void> {
    return new Promise((_resolve, reject) => {
      ws.onmessage = (ev) => {
        const frame = decodeFrame(ev.data);
        if (!frame) return; // ignored, as the Python runner does
        void this.serial(() => this.core.receive(frame)).then((actions) => {
          this.perform(actions);
          this.#scheduleFlush();
        });
      };
      ws.onclose = (ev) =>
        reject(new ConnectionClosed(ev.code, ev.reason || "the connection closed"));
    });
  }

  // The outbox ----------------------------------------------------------------------------

  wakeOutbox(delay = 0): void {
    if (delay > 0) {
      if (!this.#wakeTimer) {
        this.#wakeTimer = setTimeout(() => {
          this.#wakeTimer = null;
          this.wakeOutbox();
        }, delay * 1000);
      }
      return;
    }
    if (this.#outboxRunning) {
      this.#outboxAgain = true;
      return;
    }
    this.#outboxRunning = true;
    void this.#outboxPass().finally(() => {
      this.#outboxRunning = false;
      if (this.#outboxAgain) {
        this.#outboxAgain = false;
        this.wakeOutbox();
      }
    });
  }

  async #outboxPass(): Promise<void> {
    const ws = this.ws;
    const generation = this.generation;
    if (!ws) return;
    const items = await this.serial(() => this.core.nextOutboxItems());
    for (const item of items) {
      if (generation !== this.generation) return;
      let actions = await this.serial(() => this.core.prepare(item));
      let claims = actions.filter((a): a is ClaimKeys => a.type === "ClaimKeys");
      actions = actions.filter((a) => a.type !== "ClaimKeys");
      while (claims.length) {
        const claim = claims.shift()!;
        let result: Action[];
        try {
          const bundle = claim.listing
            ? await this.api.getKeys(claim.account)
            : await this.api.claimKeys(claim.account, claim.devices);
          result = await this.serial(() => this.core.keysClaimed(claim, bundle));
        } catch (exc) {
          const error = exc instanceof ClientError ? exc : new ClientError(String(exc));
          result = await this.serial(() => this.core.keysClaimFailed(claim, error));
        }
        claims = claims.concat(result.filter((a): a is ClaimKeys => a.type === "ClaimKeys"));
        actions = actions.concat(result.filter((a) => a.type !== "ClaimKeys"));
      }
      const pause = actions.find((a) => a.type === "PauseOutbox");
      this.perform(actions.filter((a) => a.type !== "PauseOutbox"));
      if (pause) {
        this.wakeOutbox(pause.delay);
        return;
      }
    }
  }
}
