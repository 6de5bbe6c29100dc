/* Generated from docs/protocol.schema.json by `npm run gen` (web/scripts/gen-frames.mjs);
 * do not edit. Regenerate after `python -m porch.protocol.schema`. */

/**
 * Generated from src/porch/protocol by `python -m porch.protocol.schema`; do not edit.
 */
export type PorchWebSocketProtocolV1 = ClientFrame | ServerFrame;
/**
 * Any client -> server frame.
 */
export type ClientFrame = AuthFrame | SendFrame | AckFrame | RejectFrame | PingFrame;
/**
 * Any server -> client frame.
 */
export type ServerFrame =
  | ReadyFrame
  | SentFrame
  | EnvelopeFrame
  | TooLargeEnvelopeFrame
  | EnvelopesFrame
  | ErrorFrame
  | KeysLowFrame
  | GroupChangedFrame
  | DrainedFrame
  | PongFrame;
/**
 * Stable error codes (docs/protocol.md, section 5); a code never changes meaning.
 */
export type ErrorCode =
  | "bad_frame"
  | "bad_request"
  | "unknown_type"
  | "frame_too_large"
  | "request_too_large"
  | "request_timeout"
  | "auth_required"
  | "auth_failed"
  | "forbidden"
  | "already_authenticated"
  | "invalid_phone"
  | "code_invalid"
  | "code_expired"
  | "too_many_attempts"
  | "session_not_found"
  | "username_taken"
  | "invalid_username"
  | "bad_signature"
  | "keys_exist"
  | "master_key_mismatch"
  | "no_keys"
  | "identity_key_in_use"
  | "too_many_devices"
  | "channel_filled"
  | "stale_device_list"
  | "mismatched_devices"
  | "stale_devices"
  | "unknown_recipient"
  | "revision_conflict"
  | "group_full"
  | "too_many_groups"
  | "group_exists"
  | "last_admin"
  | "media_too_large"
  | "media_quota"
  | "media_pending"
  | "media_not_found"
  | "media_url_invalid"
  | "media_upload_done"
  | "media_incomplete"
  | "media_busy"
  | "range_not_satisfiable"
  | "not_found"
  | "method_not_allowed"
  | "rate_limited"
  | "unavailable"
  | "internal";

export interface AuthFrame {
  type: "auth";
  account: string;
  device: number;
  password: string;
  batch?: boolean;
}
export interface SendFrame {
  type: "send";
  id: string;
  /**
   * @minItems 1
   * @maxItems 1000
   */
  destinations: [Destination, ...Destination[]];
  shared?: SharedBody | null;
  ephemeral?: boolean;
  ttl?: number | null;
}
export interface Destination {
  account: string;
  /**
   * @minItems 1
   * @maxItems 64
   */
  devices: [DeviceMessage, ...DeviceMessage[]];
}
/**
 * One device of a destination: its own ciphertext (`kind` and `body`), or neither, when
 * it gets the send's `shared` one (docs/protocol.md, "Sending").
 */
export interface DeviceMessage {
  device: number;
  registration: number;
  kind?: number;
  body?: string;
}
/**
 * One ciphertext for every device without its own (a Megolm message): stored once.
 */
export interface SharedBody {
  kind: number;
  body: string;
}
export interface AckFrame {
  type: "ack";
  /**
   * @minItems 1
   * @maxItems 1000
   */
  ids: [number, ...number[]];
}
/**
 * The client cannot take these envelopes (too large, malformed): the server deletes them
 * like acknowledged ones, so that one bad envelope can never hold up a queue.
 */
export interface RejectFrame {
  type: "reject";
  /**
   * @minItems 1
   * @maxItems 1000
   */
  ids: [number, ...number[]];
  reason: "too_large" | "malformed" | "unprocessable";
}
export interface PingFrame {
  type: "ping";
  n?: number | null;
}
/**
 * Authentication succeeded: always the first frame after a good `auth`.
 */
export interface ReadyFrame {
  type: "ready";
  account: string;
  device: number;
  server_time: number;
  one_time_keys: number;
}
/**
 * A `send` was accepted (stored after commit, dropped for a block, or forwarded).
 */
export interface SentFrame {
  type: "sent";
  id: string;
  ts: number;
}
/**
 * A message for this device. `id` 0 is an online-only envelope (never acknowledged).
 */
export interface EnvelopeFrame {
  type: "envelope";
  id: number;
  from: string;
  from_device: number;
  ts: number;
  kind: number;
  body: string;
}
/**
 * Sent in place of a stored envelope whose frame cannot fit in MAX_SERVER_FRAME_BYTES:
 * who sent it and when, without kind and body. The client rejects (or acknowledges) it.
 */
export interface TooLargeEnvelopeFrame {
  type: "envelope";
  id: number;
  from: string;
  from_device: number;
  ts: number;
  too_large: true;
  size: number;
}
/**
 * Several queued envelopes at once, only to a client that authenticated with batch.
 */
export interface EnvelopesFrame {
  type: "envelopes";
  /**
   * @minItems 1
   * @maxItems 64
   */
  items: [EnvelopeFrame | TooLargeEnvelopeFrame, ...(EnvelopeFrame | TooLargeEnvelopeFrame)[]];
}
/**
 * A frame was refused. Details are present only with the codes that have them
 * (docs/protocol.md, "error details"); `ref` may be null for a bad_frame without an id.
 */
export interface ErrorFrame {
  type: "error";
  code: ErrorCode;
  message: string;
  ref?: string | null;
  frame_type?: "auth" | "send" | "ack" | "reject" | "ping";
  /**
   * @maxItems 1000
   */
  accounts?: AccountDevices[];
  limit?: number;
  retry_after?: number;
}
/**
 * One destination whose device list was wrong (mismatched_devices, stale_devices).
 */
export interface AccountDevices {
  account: string;
  /**
   * @maxItems 64
   */
  missing: number[];
  /**
   * @maxItems 64
   */
  extra: number[];
  /**
   * @maxItems 64
   */
  stale: number[];
}
/**
 * Someone claimed this device's one-time keys and few are left: upload more.
 */
export interface KeysLowFrame {
  type: "keys_low";
  count: number;
}
/**
 * A group this device's account is (or was, until now) a member of changed: a hint to
 * refetch it (GET /v1/groups/{id}); online-only, never stored (docs/protocol.md, "Groups").
 */
export interface GroupChangedFrame {
  type: "group_changed";
  group: string;
  revision: number;
}
/**
 * Once per connection: the queued backlog has been handed over (not acknowledged).
 */
export interface DrainedFrame {
  type: "drained";
}
/**
 * The answer to `ping`, with its `n` (null when the ping had none).
 */
export interface PongFrame {
  type: "pong";
  n: number | null;
}
