/**
 * Retry requests in ./idb (mirrors porch.client.store's `resends` table and
 * RichStore.find_outgoing; core/retry.ts): finding the sent message a request names, and the
 * count of its resends, incremented inside the commit's transaction.
 */

import type { Writes } from "../core/types";
import { type MessageRecord, type Tx, resendKey } from "./rows_schema";
import { byTime } from "./rows_message";

/** The latest outgoing row among `rows` (one conversation's) whose server ts is `serverTs`. */
export function latestSentAt(rows: MessageRecord[], serverTs: number): MessageRecord | null {
  const matching = rows.filter((r) => r.outgoing && r.serverTs === serverTs).sort(byTime);
  return matching.at(-1) ?? null;
}

export async function applyResends(tx: Tx, resends: NonNullable<Writes["resends"]>): Promise<void> {
  const store = tx.objectStore("resends");
  for (const { peer, clientId } of resends) {
    const key = resendKey(peer, clientId);
    const before = (await store.get(key))?.count ?? 0;
    await store.put({ key, peer, clientId, count: before + 1 });
  }
}
