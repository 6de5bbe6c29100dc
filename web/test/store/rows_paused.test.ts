import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { IdbStore } from "../../src/store/idb";
import { Sealer } from "../../src/store/sealer";
import { openVersion1 } from "./version1";

// The outbox's paused state in IndexedDB (store/rows_paused.ts, schema version 6).

const PEER = "b7f3c2a0-0000-4000-8000-00000000beef";
const OTHER = "c0c0c0c0-0000-4000-8000-00000000ca01";
const bytes = (n: number) => new Uint8Array([n, n, n]);

/** A profile made before version 6: a version-1 database with its seal key and one queued
 * item, written as the old app wrote them. */
async function oldProfile(name: string): Promise<void> {
  await openVersion1(name);
  const sealer = await Sealer.generate();
  const content = await sealer.seal("outbox:old", bytes(7));
  await new Promise<void>((resolve, reject) => {
    const req = indexedDB.open(name, 1);
    req.onsuccess = () => {
      const db = req.result;
      const tx = db.transaction(["meta", "outbox"], "readwrite");
      tx.objectStore("meta").put(sealer.key, "sealkey");
      tx.objectStore("outbox").add({
        clientId: "old",
        recipient: PEER,
        content,
        isText: true,
        createdAt: 1,
      });
      tx.oncomplete = () => {
        db.close();
        resolve();
      };
      tx.onerror = () => reject(tx.error);
    };
    req.onerror = () => reject(req.error);
  });
}

const item = (clientId: string, recipient = PEER) => ({
  clientId,
  recipient,
  content: bytes(clientId.length),
  isText: true,
  createdAt: 2,
});
const pause = (clientId: string) => ({ clientId, code: "identity_changed", reason: "waits" });

describe("IdbStore, paused outbox items (version 6)", () => {
  it("opens an older profile, its queued item kept; pauses and resumes it", async () => {
    await oldProfile("paused-upgrade");
    let store = await IdbStore.open("paused-upgrade");
    const [old] = await store.pending(0, 10);
    expect(old).toMatchObject({ clientId: "old", recipient: PEER, content: bytes(7) });
    expect(await store.pausedIds(PEER)).toEqual([]);

    await store.commit({ pause: [pause("old")] });
    expect(await store.pending(0, 10)).toEqual([]);
    expect(await store.outboxSize()).toBe(0);
    store.close();
    store = await IdbStore.open("paused-upgrade");
    expect(await store.pausedIds(PEER)).toEqual(["old"]);

    await store.commit({ resume: [PEER] });
    const [again] = await store.pending(0, 10);
    expect(again).toMatchObject({ clientId: "old", content: bytes(7) }); // its seal still opens
    expect(again!.seq).toBeGreaterThan(old!.seq); // a new seq: a running cursor reaches it
    expect(await store.pausedIds(PEER)).toEqual([]);
    store.close();
  });

  it("resumes one recipient's items in their old order, after what was queued since", async () => {
    const store = await IdbStore.open("paused-order");
    await store.commit({ enqueue: [item("a"), item("b"), item("c", OTHER), item("dd")] });
    await store.commit({ pause: [pause("a"), pause("dd"), pause("c"), pause("gone")] });
    await store.commit({ pause: [pause("b")] });
    expect(await store.pausedIds(PEER)).toEqual(["a", "b", "dd"]); // by their seq
    expect(await store.pausedIds(OTHER)).toEqual(["c"]);
    await store.commit({ enqueue: [item("later")] });

    await store.commit({ resume: [PEER] });
    const pending = await store.pending(0, 10);
    expect(pending.map((i) => i.clientId)).toEqual(["later", "a", "b", "dd"]);
    expect(pending.map((i) => i.content)).toEqual([bytes(5), bytes(1), bytes(1), bytes(2)]);
    expect(await store.pausedIds(OTHER)).toEqual(["c"]); // another recipient's stay held
    expect(await store.outboxSize()).toBe(4);
    store.close();
  });
});
