import { describe, expect, it } from "vitest";
import {
  describeNotice,
  noticeFromObj,
  plausible,
  settingsNotice,
} from "../../src/core/group_notices";
import type { ServerGroup } from "../../src/core/group_sync";
import type { GroupUpdate } from "../../src/crypto/content";
import { DEFAULT_SETTINGS, sealGroupState } from "../../src/crypto/group_state";
import { loadOlm } from "../../src/crypto/olm_raw";
import { b64decode } from "../../src/protocol/codec";
import { IdbStore } from "../../src/store/idb";
import { makePeer, type Peer } from "./helpers";

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";
const CAROL = "c0c0c0c0-0000-4000-8000-00000000ca01";
const GID = "9a9a9a9a-1111-4222-8333-444444444444";

function group(members: Array<[string, "admin" | "member"]>, revision = 5): ServerGroup {
  return {
    id: GID,
    revision,
    state: new Uint8Array(40),
    stateRevision: 1,
    settings: { membersCanEdit: false, joinApproval: false },
    members: members.map(([account, role]) => ({ account, role })),
    pending: [],
    invite: false,
  };
}

const update = (action: GroupUpdate["action"], targets: string[], revision = 5): GroupUpdate => ({
  t: "group_update",
  group: GID,
  revision,
  action,
  targets,
});

describe("which claimed group changes are shown", () => {
  const g = group([
    [ALICE, "admin"],
    [BOB, "admin"],
    [CAROL, "member"],
  ]);
  it.each([
    ["an admin's promotion the group shows", ALICE, update("promote", [BOB]), true],
    ["a promotion of someone still a member", ALICE, update("promote", [CAROL]), false],
    ["a member's promotion (only admins may)", CAROL, update("promote", [BOB]), false],
    ["a member's rename without members_can_edit", CAROL, update("state", []), false],
    ["a leave by someone still in the group", CAROL, update("leave", []), false],
    ["a leave by someone gone", "d0d0d0d0-0000-4000-8000-00000000d001", update("leave", []), true],
    ["a revision beyond the server's", ALICE, update("add", [CAROL], 6), false],
    ["an older promotion (the group changed since)", ALICE, update("promote", [CAROL], 4), true],
  ])("%s", (_what, by, u, shown) => {
    expect(plausible(by, u, g)).toBe(shown);
  });

  it("words them as the SDK does, this account as you", () => {
    const label = (a: string) => ({ [BOB]: "@bob", [CAROL]: "@carol" })[a] ?? a.slice(0, 8);
    const say = (n: Parameters<typeof describeNotice>[0]) => describeNotice(n, label, ALICE);
    expect(say({ by: ALICE, action: "add", targets: [BOB] })).toBe("You added @bob");
    expect(say({ by: BOB, action: "leave", targets: [] })).toBe("@bob left");
    expect(say({ by: CAROL, action: "state", targets: [], name: "X" })).toBe(
      "@carol renamed the group to “X”",
    );
    expect(say({ by: BOB, action: "join", targets: [] })).toBe("@bob joined by link");
    expect(say({ by: BOB, action: "promote", targets: [ALICE, CAROL] })).toBe(
      "@bob made you and @carol an admin",
    );
    expect(say({ by: "", action: "remove", targets: [ALICE] })).toBe(
      "You were removed from the group",
    );
  });
});

async function groupPeer(id: string): Promise<Peer> {
  const peer = await makePeer(id);
  peer.core.enableGroups(await loadOlm(), new Uint8Array(32).fill(5));
  return peer;
}

describe("notices in the group's history", () => {
  it("a claim borne out by the fetch is a notice row that survives a reopen", async () => {
    const alice = await groupPeer(ALICE);
    const key = await alice.core.groups!.crypto.newStateKey(GID);
    const seal = (name: string, rev: number) =>
      sealGroupState(b64decode(key.key), GID, rev, key.epoch, {
        name,
        description: "",
        avatar: null,
        timerSeconds: 0,
        settings: DEFAULT_SETTINGS,
      });
    const base = {
      ...group([
        [BOB, "admin"],
        [ALICE, "member"],
      ]),
      settings: DEFAULT_SETTINGS,
    };
    await alice.core.groupFetched({ ...base, revision: 1, state: await seal("Hikers", 1) });
    await alice.store.setLabel(BOB, "@bob");
    const sync = alice.core.groups!.sync;
    sync.told(BOB, update("state", [], 2));
    sync.told(BOB, update("promote", [CAROL], 2)); // Carol is not in the group: dropped
    await alice.core.groupFetched({
      ...base,
      revision: 2,
      stateRevision: 2,
      state: await seal("Climbers", 2),
    });
    const rows = (await alice.store.history(`g:${GID}`)).filter((m) => m.status === "notice");
    expect(rows.map((m) => m.body)).toEqual(["@bob renamed the group to “Climbers”"]);
    expect(rows[0]!.extra?.notice).toEqual({
      by: BOB,
      action: "state",
      targets: [],
      name: "Climbers",
    });
    expect(rows[0]!.clientId).not.toContain(BOB.slice(0, 8));

    // Read back from IndexedDB by another store object (a reload): sealed extras intact.
    const dbName = (alice.store as unknown as { db: { name: string } }).db.name;
    const again = await IdbStore.open(dbName);
    const stored = (await again.history(`g:${GID}`)).find((m) => m.status === "notice");
    expect(stored?.extra?.notice?.name).toBe("Climbers");

    // Removed: a 404 on fetch says so, naming who removed us when a member said it.
    sync.told(BOB, update("remove", [ALICE], 3));
    await alice.core.groupFetchFailed(
      GID,
      Object.assign(new Error("gone"), { code: "not_found", details: {} }) as never,
    );
    const last = (await alice.store.history(`g:${GID}`)).at(-1)!;
    expect(last.status).toBe("notice");
    expect(last.body).toBe("@bob removed you");
  });
});

describe("settings notices", () => {
  const say = (n: Parameters<typeof describeNotice>[0]) =>
    describeNotice(n, (a) => (a === BOB ? "@bob" : a.slice(0, 8)), ALICE);
  const on = { membersCanEdit: true, joinApproval: true };
  const off = { membersCanEdit: false, joinApproval: false };

  it("names what changed, or every setting when the settings before are not known", () => {
    expect(settingsNotice(BOB, { ...on }, { ...on, membersCanEdit: false })).toEqual({
      by: BOB,
      action: "settings",
      targets: [],
      settings: { membersCanEdit: false },
    });
    expect(say(settingsNotice(BOB, on, { ...on, membersCanEdit: false }))).toBe(
      "@bob changed the group's settings: only admins edit the group info",
    );
    expect(say(settingsNotice(ALICE, off, { ...off, joinApproval: true }))).toBe(
      "You changed the group's settings: admins approve new members",
    );
    expect(say(settingsNotice(BOB, null, off))).toBe(
      "@bob changed the group's settings: only admins edit the group info and new members join without approval",
    );
    expect(say(settingsNotice(BOB, on, on))).toBe(
      "@bob changed the group's settings: members can edit the group info and admins approve new members",
    );
    expect(say({ by: BOB, action: "settings", targets: [] })).toBe(
      "@bob changed the group's settings",
    );
  });

  it("reads the settings back from a stored row, dropping what is not a boolean", () => {
    const stored = { by: BOB, action: "settings", targets: [], settings: { joinApproval: true } };
    expect(noticeFromObj(stored)?.settings).toEqual({ joinApproval: true });
    const odd = { ...stored, settings: { joinApproval: "yes", membersCanEdit: false } };
    expect(noticeFromObj(odd)?.settings).toEqual({ membersCanEdit: false });
  });

  it("a settings claim is told by the sealed state it made, against the state before", async () => {
    const alice = await groupPeer(ALICE);
    const key = await alice.core.groups!.crypto.newStateKey(GID);
    const seal = (settings: typeof on, rev: number) =>
      sealGroupState(b64decode(key.key), GID, rev, key.epoch, {
        name: "Hikers",
        description: "",
        avatar: null,
        timerSeconds: 0,
        settings,
      });
    const base = group([
      [BOB, "admin"],
      [ALICE, "member"],
    ]);
    const start = { membersCanEdit: true, joinApproval: false };
    await alice.core.groupFetched({
      ...base,
      settings: start,
      revision: 1,
      state: await seal(start, 1),
    });
    await alice.store.setLabel(BOB, "@bob");
    const now = { membersCanEdit: true, joinApproval: true };
    // The server's hints first (settings, then the state sealed with them), the claim last.
    await alice.core.groupFetched({
      ...base,
      settings: now,
      revision: 2,
      state: await seal(start, 1),
    });
    const sealed = await seal(now, 3);
    await alice.core.groupFetched({
      ...base,
      settings: now,
      revision: 3,
      stateRevision: 3,
      state: sealed,
    });
    alice.core.groups!.sync.told(BOB, update("settings", [], 3));
    await alice.core.groupFetched({
      ...base,
      settings: now,
      revision: 3,
      stateRevision: 3,
      state: sealed,
    });
    const rows = (await alice.store.history(`g:${GID}`)).filter((m) => m.status === "notice");
    expect(rows.map((m) => m.body)).toEqual([
      "@bob changed the group's settings: admins approve new members",
    ]);
    expect((await alice.store.group(GID))?.state?.settings).toEqual(now);

    // A member may not claim it: dropped, never shown as fact.
    alice.core.groups!.sync.told(ALICE, update("settings", [], 3));
    await alice.core.groupFetched({
      ...base,
      settings: now,
      revision: 3,
      stateRevision: 3,
      state: sealed,
    });
    expect(
      (await alice.store.history(`g:${GID}`)).filter((m) => m.status === "notice"),
    ).toHaveLength(1);
  });
});
