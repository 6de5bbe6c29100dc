import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import type { LocalGroup } from "../../src/core/types";
import { DEFAULT_SETTINGS } from "../../src/crypto/group_state";
import { IdbStore } from "../../src/store/idb";
import { openVersion1 } from "./version1";

const GID = "9a9a9a9a-1111-4222-8333-444444444444";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";

const group: LocalGroup = {
  groupId: GID,
  revision: 4,
  role: "admin",
  blob: new Uint8Array([1, 2, 3]),
  settings: DEFAULT_SETTINGS,
  invite: false,
  members: [{ accountId: BOB, role: "member" }],
  pending: [],
  state: {
    name: "Secret plans",
    description: "",
    avatar: null,
    timerSeconds: 0,
    settings: DEFAULT_SETTINGS,
  },
  stateRevision: 4,
};

function rawGroups(name: string): Promise<unknown[]> {
  return new Promise((resolve) => {
    const open = indexedDB.open(name);
    open.onsuccess = () => {
      const req = open.result.transaction("groups").objectStore("groups").getAll();
      req.onsuccess = () => {
        open.result.close();
        resolve(req.result);
      };
    };
  });
}

describe("IdbStore groups (version 2)", () => {
  it("upgrades a version-1 database and keeps groups, keys and sessions, sealed", async () => {
    await openVersion1("upgrade-1");
    const store = await IdbStore.open("upgrade-1");
    await store.commit({
      groups: [group],
      stateKeys: [
        { groupId: GID, epoch: 0, key: new Uint8Array(32).fill(1) },
        { groupId: GID, epoch: 1, key: new Uint8Array(32).fill(2) },
      ],
      outbound: [{ groupId: GID, sessionId: "s", pickle: "p", rotate: false, shared: [] }],
      inbound: [["k", "pickle"]],
    });
    // The first key of an epoch wins.
    await store.commit({ stateKeys: [{ groupId: GID, epoch: 1, key: new Uint8Array(32) }] });
    store.close();

    const again = await IdbStore.open("upgrade-1");
    expect(await again.group(GID)).toEqual(group);
    expect(await again.groupIds()).toEqual([GID]);
    expect(await again.latestStateKey(GID)).toEqual([1, new Uint8Array(32).fill(2)]);
    expect(await again.stateKey(GID, 0)).toEqual(new Uint8Array(32).fill(1));
    expect((await again.outboundSession(GID))?.sessionId).toBe("s");
    expect(await again.inboundSession("k")).toBe("pickle");
    const convo = (await again.conversations()).find((c) => c.peer === `g:${GID}`);
    expect(convo).toMatchObject({ label: "Secret plans", last: null, unread: 0 });
    // The name and members are not readable at rest.
    const raw = (await rawGroups("upgrade-1")) as Array<{ sealed: Uint8Array }>;
    const text = new TextDecoder("latin1").decode(raw[0]!.sealed);
    expect(text).not.toContain("Secret plans");
    expect(text).not.toContain(BOB);
    again.close();
  });
});
