/**
 * The outbox's paused items in ./idb's commit (mirrors porch.client.verified `pause` and
 * `resume`; docs/design.md, "Verified contacts"). Pausing moves a queued row, its sealed
 * content as it is (the seal's slot names the client id, not the seq), from `outbox` to
 * `paused` under the same seq; resuming adds the rows back to `outbox` in their old order, so
 * each gets a new seq from the outbox's key generator, above every one before it, and a
 * running outbox's cursor reaches them (as `porch outbox retry` gives new seqs).
 */

import type { Writes } from "../core/types";
import type { Tx } from "./rows_schema";

export const MAX_REASON_CHARS = 500; // as the SDK's outbox.error

export async function applyPause(tx: Tx, pause: NonNullable<Writes["pause"]>): Promise<void> {
  const outbox = tx.objectStore("outbox");
  for (const { clientId, code, reason } of pause) {
    const seq = await outbox.index("clientId").getKey(clientId);
    const row = seq === undefined ? undefined : await outbox.get(seq);
    if (seq === undefined || !row) continue; // sent or failed meanwhile: nothing waits
    await outbox.delete(seq);
    await tx
      .objectStore("paused")
      .put({ ...row, seq, code, reason: reason.slice(0, MAX_REASON_CHARS) });
  }
}

export async function applyResume(tx: Tx, recipients: readonly string[]): Promise<void> {
  const paused = tx.objectStore("paused");
  for (const recipient of recipients) {
    const rows = (await paused.index("recipient").getAll(recipient)).sort((a, b) => a.seq - b.seq);
    for (const row of rows) {
      await paused.delete(row.seq);
      const { seq: _seq, code: _code, reason: _reason, ...item } = row;
      await tx.objectStore("outbox").add(item);
    }
  }
}
