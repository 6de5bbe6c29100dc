/**
 * What the client core asks its I/O layer to do (mirrors src/porch/client/core/actions.py;
 * docs/design.md, "Client core"). The core never performs I/O: each method returns a list
 * of these, and the runner (src/net/runner.ts) carries them out in order; answers to HTTP
 * calls come back as core method calls (keysFetched, keysClaimed, ...).
 */

import type { ClientFrame } from "../protocol/frames.gen";
import type { Event } from "./events";
import type { OutboxItem } from "./types";

/** Send `frame` on the current connection; `clientId` names the outbox item it carries. */
export interface SendFrame {
  type: "SendFrame";
  frame: ClientFrame;
  clientId: string | null;
}

/** GET /v1/keys/{account}, then keysFetched(account, token, bundle) or keysFetchFailed. */
export interface FetchKeys {
  type: "FetchKeys";
  account: string;
  token: number;
  reason: "unknown_device" | "refetch";
}

/** Claim one-time keys of `devices` (null: all) of `account`, then keysClaimed. With
 * `listing`, only list the account's devices (GET /v1/keys, which takes no one-time key):
 * one's own, once, to find the other devices a sent copy goes to (./link_copies). */
export interface ClaimKeys {
  type: "ClaimKeys";
  item: OutboxItem;
  account: string;
  devices: readonly number[] | null;
  listing?: boolean;
}

export interface EmitEvent {
  type: "EmitEvent";
  event: Event;
}

/** Ask the server how many one-time keys it holds; if few, upload core.oneTimeKeys(count). */
export interface TopUpKeys {
  type: "TopUpKeys";
}

/** Look at the outbox again after `delay` seconds. */
export interface WakeOutbox {
  type: "WakeOutbox";
  delay: number;
}

/** The outbox cannot make progress now: stop this pass, try again after `delay` seconds. */
export interface PauseOutbox {
  type: "PauseOutbox";
  delay: number;
}

/** The outbox item is done: sent at `ts`, or refused with `error` (a stable code). */
export interface SendSettled {
  type: "SendSettled";
  clientId: string;
  ts: number;
  error: string | null;
}

/** Close the connection without acknowledging what waits: only a redelivery heals it. */
export interface Reconnect {
  type: "Reconnect";
  reason: string;
}

/** GET /v1/groups/{groupId}, then core.groupFetched(group) or core.groupFetchFailed. */
export interface FetchGroup {
  type: "FetchGroup";
  groupId: string;
}

/** A member left and this device is the group's lowest admin: choose the next state key
 * (net/groups.ts rotateStateKey; the leaver must not choose it). */
export interface RotateStateKey {
  type: "RotateStateKey";
  groupId: string;
}

/** Someone new is in the group and this device is its lowest admin: tell the members the
 * current state key (net/groups.ts shareStateKey), since one who joined by link holds the key
 * of the epoch the link was made in (a member may have left since). */
export interface ShareStateKey {
  type: "ShareStateKey";
  groupId: string;
}

export type Action =
  | SendFrame
  | FetchKeys
  | ClaimKeys
  | EmitEvent
  | TopUpKeys
  | WakeOutbox
  | PauseOutbox
  | SendSettled
  | Reconnect
  | FetchGroup
  | RotateStateKey
  | ShareStateKey;

export const emit = (event: Event): EmitEvent => ({ type: "EmitEvent", event });
export const wake = (delay = 0): WakeOutbox => ({ type: "WakeOutbox", delay });
