/**
 * The IndexedDB schema of ./idb (split out of it): the stores, their record shapes and the
 * version upgrades.
 */

import type { DBSchema, IDBPDatabase, IDBPTransaction, StoreNames } from "idb";
import type { Contact, OutboxItem, PeerDeviceRow, StoredMessage, TimerRow } from "../core/types";

// Each area's stores come in their own `oldVersion < N` block below: 2 wgroups (groups),
// 4 wmedia (timers, the messages expiry index), 6 wverify (paused outbox items), 7 wretry
// (resend counts); 3 and 5
// (linking, settings) needed none, but the version is theirs too, so an area that adds a
// store later starts from here.
export const DB_VERSION = 7;

export interface MessageRecord extends Omit<StoredMessage, "body" | "extra"> {
  key: string;
  body: Uint8Array; // sealed
  extra?: Uint8Array; // sealed (core/rich_extra.ts)
}

export interface OutboxRecord extends Omit<OutboxItem, "seq" | "content"> {
  seq?: number;
  content: Uint8Array; // sealed
}

/** An outbox item held while its recipient's changed key waits to be verified or accepted
 * (the SDK's outbox state `paused`, porch.client.verified): kept under its old seq, so resuming
 * queues the held items again in their order. */
export interface PausedRecord extends OutboxRecord {
  seq: number;
  code: string; // identity_changed
  reason: string; // the sentence the core gave
}

export interface PorchDB extends DBSchema {
  meta: { key: string; value: CryptoKey | Uint8Array };
  sessions: { key: string; value: Uint8Array };
  contacts: { key: string; value: Contact };
  devices: { key: [string, number]; value: PeerDeviceRow; indexes: { account: string } };
  messages: { key: string; value: MessageRecord; indexes: { peer: string; expiresAt: number } };
  outbox: { key: number; value: OutboxRecord; indexes: { clientId: string } };
  seen: { key: number; value: { id: number; ts: number } };
  // Groups (version 2): rows sealed whole; inbound Megolm pickles are sealed by crypto/megolm.
  groups: { key: string; value: { groupId: string; sealed: Uint8Array } };
  group_keys: {
    key: string;
    value: { slot: string; groupId: string; epoch: number; key: Uint8Array };
    indexes: { group: string };
  };
  megolm_out: { key: string; value: { groupId: string; sealed: Uint8Array } };
  megolm_in: { key: string; value: Uint8Array };
  timers: { key: string; value: TimerRow };
  // Version 6 (wverify): outbox items paused for a verified contact whose key changed.
  paused: { key: number; value: PausedRecord; indexes: { recipient: string } };
  // Version 7 (wretry): how often each sent message was resent on a retry request.
  resends: { key: string; value: ResendRecord };
}

/** The SDK's `resends` row (porch.client.store): keyed by resendKey(peer, clientId). */
export interface ResendRecord {
  key: string;
  peer: string;
  clientId: string;
  count: number;
}

export function resendKey(peer: string, clientId: string): string {
  return `${peer}|${clientId}`;
}

export const STORES = [
  "meta",
  "sessions",
  "contacts",
  "devices",
  "messages",
  "outbox",
  "seen",
  "groups",
  "group_keys",
  "megolm_out",
  "megolm_in",
  "timers",
  "paused",
  "resends",
] as const;
export type Tx = IDBPTransaction<
  PorchDB,
  typeof STORES extends readonly (infer T)[] ? T[] : never,
  "readwrite"
>;

/** openDB's upgrade: from whatever version the browser holds to DB_VERSION. */
export function upgrade(
  db: IDBPDatabase<PorchDB>,
  oldVersion: number,
  upgradeTx: IDBPTransaction<PorchDB, StoreNames<PorchDB>[], "versionchange">,
): void {
  if (oldVersion < 1) createVersion1(db);
  if (oldVersion < 2) {
    // Groups (wgroups).
    db.createObjectStore("groups", { keyPath: "groupId" });
    db.createObjectStore("group_keys", { keyPath: "slot" }).createIndex("group", "groupId");
    db.createObjectStore("megolm_out", { keyPath: "groupId" });
    db.createObjectStore("megolm_in");
  }
  if (oldVersion < 4) {
    // wmedia: 1:1 disappearing timers, and the index the expiry sweep walks.
    db.createObjectStore("timers", { keyPath: "peer" });
    upgradeTx.objectStore("messages").createIndex("expiresAt", "expiresAt");
  }
  if (oldVersion < 6) {
    // wverify: the outbox's paused items (core/outbox_paused.ts); the outbox rows stay as
    // they are, so an older profile's queued items go on as before.
    db.createObjectStore("paused", { keyPath: "seq" }).createIndex("recipient", "recipient");
  }
  if (oldVersion < 7) {
    // wretry: resend counts (core/retry.ts); no other store changes, so an older profile's
    // messages and outbox go on as before, with no message resent yet.
    db.createObjectStore("resends", { keyPath: "key" });
  }
}

function createVersion1(db: IDBPDatabase<PorchDB>): void {
  db.createObjectStore("meta");
  db.createObjectStore("sessions");
  db.createObjectStore("contacts", { keyPath: "accountId" });
  db.createObjectStore("devices", { keyPath: ["accountId", "deviceId"] }).createIndex(
    "account",
    "accountId",
  );
  db.createObjectStore("messages", { keyPath: "key" }).createIndex("peer", "peer");
  db.createObjectStore("outbox", { keyPath: "seq", autoIncrement: true }).createIndex(
    "clientId",
    "clientId",
    { unique: true },
  );
  db.createObjectStore("seen", { keyPath: "id" });
}
