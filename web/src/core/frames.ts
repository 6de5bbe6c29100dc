/**
 * Every frame the client core builds, in one place (docs/protocol.md, "Frames"); mirrors
 * src/porch/client/core/frames.py. Typed by the frame types generated from
 * docs/protocol.schema.json, so a shape the schema does not allow does not compile.
 */

import type {
  AckFrame,
  AuthFrame,
  Destination,
  DeviceMessage,
  RejectFrame,
  SendFrame,
} from "../protocol/frames.gen";

export const MAX_ACK_IDS = 1000; // the server's bound per ack or reject frame

export function auth(account: string, device: number, password: string): AuthFrame {
  // "batch": the server may send backlogs as `envelopes` frames (docs/protocol.md).
  return { type: "auth", account, device, password, batch: true };
}

export function acks(ids: readonly number[]): AckFrame[] {
  const out: AckFrame[] = [];
  for (let i = 0; i < ids.length; i += MAX_ACK_IDS) {
    out.push({ type: "ack", ids: ids.slice(i, i + MAX_ACK_IDS) as AckFrame["ids"] });
  }
  return out;
}

export function rejects(reason: RejectFrame["reason"], ids: readonly number[]): RejectFrame[] {
  const out: RejectFrame[] = [];
  for (let i = 0; i < ids.length; i += MAX_ACK_IDS) {
    const chunk = ids.slice(i, i + MAX_ACK_IDS) as RejectFrame["ids"];
    out.push({ type: "reject", ids: chunk, reason });
  }
  return out;
}

export function ciphertext(
  device: number,
  registration: number,
  kind: number,
  body: string,
): DeviceMessage {
  return { device, registration, kind, body };
}

export function destination(account: string, devices: DeviceMessage[]): Destination {
  return { account, devices: devices as Destination["devices"] };
}

export function send(id: string, destinations: Destination[], ephemeral = false): SendFrame {
  const frame: SendFrame = {
    type: "send",
    id,
    destinations: destinations as SendFrame["destinations"],
  };
  if (ephemeral) frame.ephemeral = true;
  return frame;
}
