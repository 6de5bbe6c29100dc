/**
 * The records the core reads and writes, and the store it writes them through (mirrors
 * porch.client.store's rows). The store is asynchronous (IndexedDB), so the core batches one
 * transaction's writes into a `Writes` and commits them at once: the store-before-ack rule
 * (docs/design.md, "The client") is "commit, then acknowledge".
 */

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
}

export interface OutboxItem {
  seq: number;
  clientId: string;
  recipient: string;
  content: Uint8Array; // the encoded (padded) content, sealed at rest
  isText: boolean;
  createdAt: number;
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
  outboxSize(): Promise<number>;
  /** Commit atomically; the keys ("peer|out|clientId") of the messages that were new. */
  commit(writes: Writes): Promise<Set<string>>;
  history(peer: string, limit: number): Promise<StoredMessage[]>;
  conversations(): Promise<Conversation[]>;
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
