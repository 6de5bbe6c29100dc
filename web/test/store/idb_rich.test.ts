import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import type { Attachment } from "../../src/crypto/rich";
import { IdbStore } from "../../src/store/idb";
import { openVersion1 } from "./version1";

const PEER = "b7f3c2a0-0000-4000-8000-00000000beef";

const message = (clientId: string, expiresAt?: number) => ({
  peer: PEER,
  clientId,
  outgoing: false,
  device: 1,
  ts: 10,
  body: `body ${clientId}`,
  status: "received" as const,
  serverTs: 10,
  unread: false,
  ...(expiresAt !== undefined && { expiresAt }),
});

describe("IdbStore, rich rows (version 4)", () => {
  it("upgrades a version-1 database and keeps extras sealed with their row", async () => {
    await openVersion1("rich-upgrade");
    const store = await IdbStore.open("rich-upgrade");
    const att: Attachment = {
      id: "AAAAAAAAAAAAAAAAAAAAAA",
      key: new Uint8Array(64).fill(1),
      digest: new Uint8Array(32).fill(2),
      size: 5,
      contentType: "image/png",
      name: "a.png",
      thumbnail: new Uint8Array([1, 2, 3]),
    };
    await store.commit({
      messages: [{ ...message("m1"), extra: { attachments: [att] } }, message("m2", 100)],
      timers: [{ peer: PEER, seconds: 30, ts: 5 }],
    });
    const m1 = await store.message(PEER, false, "m1");
    expect(m1?.extra?.attachments?.[0]).toEqual(att);
    expect(await store.timer(PEER)).toEqual({ peer: PEER, seconds: 30, ts: 5 });

    await store.commit({
      updates: [
        {
          peer: PEER,
          outgoing: false,
          clientId: "m1",
          body: "",
          extra: null,
          edited: false,
          deleted: true,
        },
      ],
    });
    expect(await store.message(PEER, false, "m1")).toMatchObject({ body: "", deleted: true });
    expect((await store.message(PEER, false, "m1"))?.extra).toBeUndefined();

    expect(await store.expire(99)).toEqual([]);
    expect(await store.expire(100)).toEqual([{ peer: PEER, outgoing: false, clientId: "m2" }]);
    expect((await store.history(PEER)).map((m) => m.clientId)).toEqual(["m1"]);
    store.close();
  });
});
