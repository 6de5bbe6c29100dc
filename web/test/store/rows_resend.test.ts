import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import type { StoredMessage } from "../../src/core/types";
import { DB_VERSION, IdbStore } from "../../src/store/idb";
import { openVersion1 } from "./version1";

// Resend counts and the lookup of a sent message in IndexedDB (store/rows_resend.ts, schema
// version 7; core/retry.ts).

const PEER = "b7f3c2a0-0000-4000-8000-00000000beef";

const row = (clientId: string, over: Partial<StoredMessage> = {}): StoredMessage => ({
  peer: PEER,
  clientId,
  outgoing: true,
  device: 1,
  ts: 100,
  body: `body of ${clientId}`,
  status: "sent",
  serverTs: 500,
  unread: false,
  ...over,
});

describe("IdbStore, resends (version 7)", () => {
  it("opens a profile made before version 7 and counts resends across a reopen", async () => {
    await openVersion1("resend-upgrade");
    let store = await IdbStore.open("resend-upgrade");
    expect(DB_VERSION).toBe(7);
    expect(await store.resendCount(PEER, "m1")).toBe(0);
    await store.commit({ resends: [{ peer: PEER, clientId: "m1" }] });
    await store.commit({
      resends: [
        { peer: PEER, clientId: "m1" },
        { peer: PEER, clientId: "m2" },
      ],
    });
    store.close();
    store = await IdbStore.open("resend-upgrade");
    expect(await store.resendCount(PEER, "m1")).toBe(2);
    expect(await store.resendCount(PEER, "m2")).toBe(1);
    expect(await store.resendCount("someone-else", "m1")).toBe(0);
    store.close();
  });

  it("finds a sent message by id, or the latest sent at a server ts", async () => {
    const store = await IdbStore.open("resend-find");
    await store.commit({
      messages: [
        row("a", { ts: 100 }),
        row("b", { ts: 200 }), // sent at the same server ms: the later one is resent
        row("c", { serverTs: 700 }),
        row("in", { outgoing: false, status: "received", serverTs: 900 }),
      ],
    });
    expect((await store.findOutgoing(PEER, null, 500))?.clientId).toBe("b");
    expect((await store.findOutgoing(PEER, null, 700))?.body).toBe("body of c");
    expect(await store.findOutgoing(PEER, null, 900)).toBeNull(); // received, not sent
    expect(await store.findOutgoing(PEER, null, 1)).toBeNull();
    expect((await store.findOutgoing(PEER, "a", 0))?.body).toBe("body of a");
    expect(await store.findOutgoing(PEER, "in", 0)).toBeNull();
    expect(await store.findOutgoing("other", "a", 500)).toBeNull();
    store.close();
  });
});
