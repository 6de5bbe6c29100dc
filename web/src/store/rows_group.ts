/**
 * Sealing a commit's group rows for ./idb (split out of it): group rows and outbound Megolm
 * sessions are sealed whole (./group_rows), state keys one per (group, epoch) slot. Slots:
 * `groups:<id>`, `gkey:<id>|<epoch>`, `megolm_out:<id>`.
 */

import type { Writes } from "../core/types";
import { groupToBytes, keySlot, outboundToBytes } from "./group_rows";
import type { Sealer } from "./sealer";

export async function sealGroupWrites(sealer: Sealer, writes: Writes) {
  const seal = (slot: string, data: Uint8Array) => sealer.seal(slot, data);
  const groups = await Promise.all(
    (writes.groups ?? []).map(async (g) => ({
      groupId: g.groupId,
      sealed: await seal(`groups:${g.groupId}`, groupToBytes(g)),
    })),
  );
  const stateKeys = await Promise.all(
    (writes.stateKeys ?? []).map(async (k) => {
      const slot = keySlot(k.groupId, k.epoch);
      return { slot, groupId: k.groupId, epoch: k.epoch, key: await seal(`gkey:${slot}`, k.key) };
    }),
  );
  const outbound = await Promise.all(
    (writes.outbound ?? []).map(async (o) => ({
      groupId: o.groupId,
      sealed: await seal(`megolm_out:${o.groupId}`, outboundToBytes(o)),
    })),
  );
  return { groups, stateKeys, outbound };
}
