/**
 * The group rows of the IndexedDB store (version 2, wgroups) as JSON bytes to seal: a
 * LocalGroup (its blob base64) and an outbound Megolm session row. Sealed whole, so the
 * group's name, members and who holds which key stay unreadable at rest (docs/security.md,
 * "Browser storage").
 */

import { b64decode, b64encode, utf8decode, utf8encode } from "../protocol/codec";
import type { LocalGroup, OutboundSessionRow } from "../core/types";

export function groupToBytes(group: LocalGroup): Uint8Array {
  return utf8encode(JSON.stringify({ ...group, blob: b64encode(group.blob) }));
}

export function groupFromBytes(data: Uint8Array): LocalGroup {
  const obj = JSON.parse(utf8decode(data)) as Omit<LocalGroup, "blob"> & { blob: string };
  return { ...obj, blob: b64decode(obj.blob) };
}

export function outboundToBytes(row: OutboundSessionRow): Uint8Array {
  return utf8encode(JSON.stringify(row));
}

export function outboundFromBytes(data: Uint8Array): OutboundSessionRow {
  return JSON.parse(utf8decode(data)) as OutboundSessionRow;
}

export function keySlot(groupId: string, epoch: number): string {
  return `${groupId}|${epoch}`;
}
