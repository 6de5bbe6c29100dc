/**
 * What the core tells the application (mirrors src/porch/client/events.py): the same event
 * names, as tagged objects so the UI can switch on `type`.
 */

export interface MessageEvent {
  type: "Message";
  id: string;
  sender: string;
  senderDevice: number;
  text: string;
  ts: number; // the sender's clock, ms
  serverTs: number; // when the server stored it, ms
  outgoing: boolean; // a sent copy from another of this account's devices (spec D)
  to: string | null;
  group?: string; // a group message (its peer is "g:<group>")
}

export interface ReceiptEvent {
  type: "ReceiptEvent";
  sender: string;
  kind: "delivered" | "read";
  ids: readonly string[];
}

/** Received messages of `peer` were read on another of this account's devices (spec D). */
export interface ReadElsewhere {
  type: "ReadElsewhere";
  peer: string;
  ids: readonly string[];
}

export interface TypingEvent {
  type: "TypingEvent";
  sender: string;
  started: boolean;
  group?: string; // typing in a group
}

export interface SendFailedEvent {
  type: "SendFailedEvent";
  id: string;
  recipient: string;
  code: string;
  message: string;
}

/** A message to a verified contact whose key changed waits in the outbox (paused) until the
 * user verifies or accepts the new key (core/outbox_paused.ts; events.py SendPausedEvent). */
export interface SendPausedEvent {
  type: "SendPausedEvent";
  id: string;
  recipient: string;
}

export interface DecryptionFailed {
  type: "DecryptionFailed";
  sender: string;
  device: number;
  reason: string;
  retryRequested?: boolean; // a 1:1 failure asked the sender to resend (core/retry.ts)
}

export interface ConnectionChanged {
  type: "ConnectionChanged";
  connected: boolean;
}

export interface Drained {
  type: "Drained";
}

export interface IdentityChanged {
  type: "IdentityChanged";
  accountId: string;
}

/** A group was fetched again, or this account is no longer in it: show it anew. */
export interface GroupChanged {
  type: "GroupChanged";
  groupId: string;
}

/** `reactor` reacted to message `id` by `author` in `peer`'s chat; "" removed it (wmedia). */
export interface ReactionChanged {
  type: "ReactionChanged";
  peer: string;
  id: string;
  author: string;
  reactor: string;
  emoji: string;
}

export interface MessageEdited {
  type: "MessageEdited";
  peer: string;
  id: string;
  author: string;
  text: string;
  ts: number;
}

/** Deleted for everyone by `author`, or (`expired`) a disappearing message's time came. */
export interface MessageDeleted {
  type: "MessageDeleted";
  peer: string;
  id: string;
  author: string;
  expired: boolean;
}

export interface TimerChanged {
  type: "TimerChanged";
  peer: string;
  seconds: number;
  by: string;
}

export type Event =
  | MessageEvent
  | ReceiptEvent
  | ReadElsewhere
  | TypingEvent
  | SendFailedEvent
  | SendPausedEvent
  | DecryptionFailed
  | ConnectionChanged
  | Drained
  | IdentityChanged
  | GroupChanged
  | ReactionChanged
  | MessageEdited
  | MessageDeleted
  | TimerChanged;
