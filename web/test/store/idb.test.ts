import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { IdbStore } from "../../src/store/idb";
import { StoreError } from "../../src/store/sealer";
import { utf8encode } from "../../src/protocol/codec";

const PEER = "b7f3c2a0-0000-4000-8000-00000000beef";
let n = 0;

function rawValues(name: string, store: string): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(name);
    open.onsuccess = () => {
      const req = open.result.transaction(store).objectStore(store).getAll();
      req.onsuccess = () => {
        open.result.close();
        resolve(req.result);
      };
      req.onerror = () => reject(req.error);
    };
  });
}

describe("IdbStore", () => {
  it("keeps the outbox and history across a reopen, sealed at rest", async () => {
    const name = `store-${n++}`;
    const first = await IdbStore.open(name);
    await first.commit({
      messages: [
        {
          peer: PEER,
          clientId: "c1",
          outgoing: true,
          device: 1,
          ts: 5,
          body: "secret words",
          status: "queued",
          serverTs: 0,
          unread: false,
        },
      ],
      enqueue: [
        {
          clientId: "c1",
          recipient: PEER,
          content: utf8encode("secret content"),
          isText: true,
          createdAt: 5,
        },
      ],
    });
    first.close();

    const again = await IdbStore.open(name);
    const [item] = await again.pending(0, 10);
    expect(item).toMatchObject({ clientId: "c1", recipient: PEER, isText: true });
    expect(new TextDecoder().decode(item!.content)).toBe("secret content");
    expect((await again.history(PEER))[0]!.body).toBe("secret words");
    again.close();

    const raw = JSON.stringify(
      [await rawValues(name, "messages"), await rawValues(name, "outbox")],
      (_k, v) => (v instanceof Uint8Array ? new TextDecoder("latin1").decode(v) : v),
    );
    expect(raw).not.toContain("secret");
    const [key] = (await rawValues(name, "meta")).filter(
      (v) => v instanceof CryptoKey,
    ) as CryptoKey[];
    expect(key!.extractable).toBe(false);
  });

  it("adds a message once, never moves a status back, and dequeues by client id", async () => {
    const store = await IdbStore.open(`store-${n++}`);
    const msg = {
      peer: PEER,
      clientId: "m",
      outgoing: true,
      device: 1,
      ts: 1,
      body: "x",
      status: "queued" as const,
      serverTs: 0,
      unread: false,
    };
    expect((await store.commit({ messages: [msg] })).size).toBe(1);
    expect((await store.commit({ messages: [msg] })).size).toBe(0);
    await store.commit({ statuses: [{ peer: PEER, ids: ["m"], outgoing: true, status: "read" }] });
    await store.commit({
      statuses: [{ peer: PEER, ids: ["m"], outgoing: true, status: "delivered" }],
    });
    expect((await store.history(PEER))[0]!.status).toBe("read");
    await store.commit({
      enqueue: [
        {
          clientId: "q",
          recipient: PEER,
          content: new Uint8Array([1]),
          isText: false,
          createdAt: 1,
        },
      ],
    });
    await store.commit({ dequeue: ["q"] });
    expect(await store.outboxSize()).toBe(0);
  });

  it("refuses a sealed value moved to another slot", async () => {
    const store = await IdbStore.open(`store-${n++}`);
    const sealed = await store.sealer.seal("meta:password", utf8encode("pw"));
    await expect(store.sealer.open("meta:master_key", sealed)).rejects.toBeInstanceOf(StoreError);
  });

  it("keeps a label learned while the core fetched keys with the contact it read before", async () => {
    const store = await IdbStore.open(`store-${n++}`);
    const before = {
      accountId: PEER,
      label: PEER.slice(0, 8),
      masterKey: null,
      deviceListVersion: null,
      deviceIds: [],
    };
    await store.setLabel(PEER, "@carol"); // learned from the server meanwhile
    await store.commit({ contacts: [{ ...before, masterKey: "mk", deviceIds: [1] }] });
    expect(await store.contact(PEER)).toMatchObject({ label: "@carol", masterKey: "mk" });
    // A label the core did mean (not the short id it started from) is written.
    await store.commit({ contacts: [{ ...before, label: "+14155550100", masterKey: "mk" }] });
    expect((await store.contact(PEER))?.label).toBe("+14155550100");
    // setLabel changes the label only: the pinned key and devices stay.
    await store.setLabel(PEER, "@carol");
    expect(await store.contact(PEER)).toMatchObject({ label: "@carol", masterKey: "mk" });
  });
});
