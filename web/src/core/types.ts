/**
 * The records the core reads and writes, and the store it writes them through (mirrors
 * porch.client.store's rows). The store is asynchronous (IndexedDB), so the core batches one
 * transaction's writes into a `Writes` and commits them at once: the store-before-ack rule
 * (docs/design.md, "The client") is "commit, then acknowledge".
 */

import type { GroupState } from "../crypto/group_state";
import type { GroupNotice } from "./group_notices";
import type { Attachment, Quote } from "../crypto/rich";

export interface PeerDeviceRow {
  accountId: string;
  deviceId: number;
  registrationId: number;
  curve25519: string;
  ed25519: string;
}

export interface Contact {
  accountId: string;
  label: string; // "+1415…", "@bob" or a short account id: what the user typed or was shown
  masterKey: string | null; // pinned on first use (docs/protocol.md section 7)
  deviceListVersion: string | null; // a u64 as a decimal string (beyond a JS number)
  deviceIds: readonly number[];
  verifiedKey?: string | null; // the master key whose safety number the user compared (./verified)
}

export type MessageStatus =
  "queued" | "sent" | "delivered" | "read" | "failed" | "received" | "undecryptable" | "notice";

export interface StoredMessage {
  peer: string;
  clientId: string;
  outgoing: boolean;
  device: number;
  ts: number;
  body: string;
  status: MessageStatus;
  serverTs: number;
  unread: boolean;
  author?: string; // a group message's sender account (peer "g:<group id>")
  // Rich messages (wmedia; core/rich.ts): absent on plain rows and on rows of version 1.
  extra?: MessageExtra; // sealed with the row
  edited?: boolean;
  deleted?: boolean;
  expiresAt?: number; // ms: the row is deleted then (a disappearing message)
}

/** What a text carried besides its body, and what later actions made of it (sealed). */
export interface MessageExtra {
  attachments?: Attachment[];
  reply?: Quote;
  forwarded?: boolean;
  edits?: Array<[ts: number, body: string]>; // earlier versions, oldest first
  bodyTs?: number; // the ts of the current body when it came from an edit
  reactions?: Record<string, { emoji: string; ts: number }>; // by reactor; "" = removed
  // One's own group text (core/group_live.ts): the members it went to, and their answers.
  to?: string[];
  receipts?: Record<string, "delivered" | "read">;
  notice?: GroupNotice; // a group notice's who-did-what (core/group_notices.ts)
}

/** A row's body and extras replaced after an edit, delete or reaction (core/rich.ts). */
export interface MessageUpdate {
  peer: string;
  outgoing: boolean;
  clientId: string;
  body: string;
  extra: MessageExtra | null;
  edited: boolean;
  deleted: boolean;
}

export interface TimerRow {
  peer: string;
  seconds: number; // 0: off
  ts: number;
}

export interface MessageRef {
  peer: string;
  outgoing: boolean;
  clientId: string;
}

export interface OutboxItem {
  seq: number;
  clientId: string;
  recipient: string;
  content: Uint8Array; // the encoded (padded) content, sealed at rest
  isText: boolean;
  createdAt: number;
  ttl?: number; // seconds the envelopes may wait undelivered (a disappearing text)
}

export interface StatusChange {
  peer: string;
  ids: readonly string[];
  outgoing: boolean;
  status: MessageStatus;
  serverTs?: number;
}

/** One transaction's writes. */
export interface Writes {
  olmAccount?: string;
  sessions?: Map<string, string>; // "account/device" -> libolm session pickles (JSON list)
  messages?: StoredMessage[]; // added only when (peer, outgoing, clientId) is new
  seen?: Array<[id: number, ts: number]>;
  statuses?: StatusChange[];
  devices?: Array<{ accountId: string; rows: PeerDeviceRow[]; replace: boolean }>;
  dropDevices?: Array<[accountId: string, deviceId: number]>;
  contacts?: Contact[];
  enqueue?: Array<Omit<OutboxItem, "seq">>;
  dequeue?: string[];
  // Verified contacts (core/outbox_paused.ts): queued items moved to the paused state, and
  // the recipients whose paused items are queued again (in their order, with new seqs).
  pause?: Array<{ clientId: string; code: string; reason: string }>;
  resume?: string[];
  updates?: MessageUpdate[]; // applied after `messages` and `statuses`
  timers?: TimerRow[];
  // Groups (core/group_*.ts).
  groups?: LocalGroup[];
  forgetGroups?: string[];
  stateKeys?: Array<{ groupId: string; epoch: number; key: Uint8Array }>;
  outbound?: OutboundSessionRow[];
  inbound?: Array<[key: string, pickle: string]>; // inboundKey(...) -> sealed Megolm pickle
  // Retry requests (core/retry.ts): one more resend of each of these sent messages.
  resends?: Array<{ peer: string; clientId: string }>;
}

export type GroupRole = "admin" | "member";

export interface GroupMemberRow {
  accountId: string;
  role: GroupRole;
}

/** A group as this device last fetched it, its sealed state opened when a key allowed. */
export interface LocalGroup {
  groupId: string;
  revision: number;
  role: GroupRole;
  blob: Uint8Array; // the sealed state as the server serves it
  settings: { membersCanEdit: boolean; joinApproval: boolean };
  invite: boolean;
  members: GroupMemberRow[];
  pending: string[];
  state: GroupState | null;
  stateRevision: number;
}

/** This device's outbound Megolm session of a group, and who was given its key. */
export interface OutboundSessionRow {
  groupId: string;
  sessionId: string;
  pickle: string; // sealed by crypto/megolm under the pickle key
  rotate: boolean; // a member went: the next send starts a new session
  shared: string[]; // "account/device" that hold the key
}

export function inboundKey(group: string, sender: string, device: number, session: string): string {
  return `${group}|${sender}|${device}|${session}`;
}

export interface Conversation {
  peer: string;
  label: string;
  last: StoredMessage | null;
  unread: number;
}

export interface LocalStore {
  peerDevices(accountId: string): Promise<PeerDeviceRow[]>;
  contact(accountId: string): Promise<Contact | null>;
  seen(envelopeId: number): Promise<boolean>;
  /** Outbox items after `afterSeq`, oldest first, at most `limit`. */
  pending(afterSeq: number, limit: number): Promise<OutboxItem[]>;
  /** Outbox items waiting, oldest first; the paused ones are not among them (`pausedIds`). */
  outboxSize(): Promise<number>;
  /** The client ids of the items to `recipient` paused until its new key is accepted, in order. */
  pausedIds(recipient: string): Promise<string[]>;
  /** Commit atomically; the keys ("peer|out|clientId") of the messages that were new. */
  commit(writes: Writes): Promise<Set<string>>;
  history(peer: string, limit: number): Promise<StoredMessage[]>;
  conversations(): Promise<Conversation[]>;
  // Groups (core/group_*.ts).
  group(groupId: string): Promise<LocalGroup | null>;
  groupIds(): Promise<string[]>;
  stateKey(groupId: string, epoch: number): Promise<Uint8Array | null>;
  latestStateKey(groupId: string): Promise<[epoch: number, key: Uint8Array] | null>;
  outboundSession(groupId: string): Promise<OutboundSessionRow | null>;
  inboundSession(key: string): Promise<string | null>;
  /** One message row, unsealed; null when it is not here. */
  message(peer: string, outgoing: boolean, clientId: string): Promise<StoredMessage | null>;
  timer(peer: string): Promise<TimerRow | null>;
  /** Delete the rows whose expiresAt is at most `now`; what went. */
  expire(now: number): Promise<MessageRef[]>;
  /** A message sent to `peer`, by client id if given, else by its server timestamp (the
   * latest of those that match); core/retry.ts. */
  findOutgoing(
    peer: string,
    clientId: string | null,
    serverTs: number,
  ): Promise<StoredMessage | null>;
  /** How often the sent message was resent on a retry request (core/retry.ts). */
  resendCount(peer: string, clientId: string): Promise<number>;
}

export function messageKey(peer: string, outgoing: boolean, clientId: string): string {
  return `${peer}|${outgoing ? 1 : 0}|${clientId}`;
}

/** The bundle the key directory answers (docs/protocol.md, "Keys"), decoded. */
export interface DirectoryDevice extends Omit<PeerDeviceRow, "accountId"> {
  signature: string;
  oneTimeKey: { keyId: string; curve25519: string; signature: string; fallback: boolean } | null;
}

export interface Bundle {
  accountId: string;
  masterKey: string;
  devices: DirectoryDevice[];
  deviceList: { list: string; signature: string } | null;
}
