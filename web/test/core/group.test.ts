import { describe, expect, it } from "vitest";
import type { Action } from "../../src/core/actions";
import type { Event } from "../../src/core/events";
import type { ServerGroup } from "../../src/core/group_sync";
import { encodeContent } from "../../src/crypto/content";
import { DEFAULT_SETTINGS, sealGroupState } from "../../src/crypto/group_state";
import { loadOlm } from "../../src/crypto/olm_raw";
import { b64decode } from "../../src/protocol/codec";
import type { SendFrame } from "../../src/protocol/frames.gen";
import { bundleOf, makePeer, type Peer } from "./helpers";

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";
const CAROL = "c0c0c0c0-0000-4000-8000-00000000ca01";
const GID = "9a9a9a9a-1111-4222-8333-444444444444";

const of = <T extends Action["type"]>(actions: Action[], type: T) =>
  actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
const events = (actions: Action[]): Event[] => of(actions, "EmitEvent").map((a) => a.event);

async function groupPeer(id: string): Promise<Peer> {
  const peer = await makePeer(id);
  peer.core.enableGroups(await loadOlm(), new Uint8Array(32).fill(5));
  return peer;
}

/** The group as the server would answer it, its state sealed under the creator's key. */
async function serverGroup(
  creator: Peer,
  members: string[],
  revision: number,
): Promise<ServerGroup> {
  const key = await creator.core.groups!.crypto.newStateKey(GID);
  const state = {
    name: "Climbers",
    description: "",
    avatar: null,
    timerSeconds: 0,
    settings: DEFAULT_SETTINGS,
  };
  const blob = await sealGroupState(b64decode(key.key), GID, revision, key.epoch, state);
  return {
    id: GID,
    revision,
    state: blob,
    stateRevision: revision,
    settings: DEFAULT_SETTINGS,
    members: [
      { account: creator.accountId, role: "admin" },
      ...members.map((a) => ({ account: a, role: "member" as const })),
    ],
    pending: [],
    invite: false,
  };
}

/** One outbox pass of `from`, answering every claim with the real peers' keys. */
async function sendPass(from: Peer, peers: Peer[]): Promise<SendFrame[]> {
  const [item] = await from.core.nextOutboxItems();
  let actions = await from.core.prepare(item!);
  for (let claim = of(actions, "ClaimKeys")[0]; claim; claim = of(actions, "ClaimKeys")[0]) {
    const peer = peers.find((p) => p.accountId === claim!.account)!;
    actions = await from.core.keysClaimed(claim, await bundleOf(peer, true));
  }
  return of(actions, "SendFrame").map((a) => a.frame as SendFrame);
}

let ids = 1000;
/** The envelope the server makes of a send for `to`: its own body, or the shared one. */
function envelope(frame: SendFrame, from: string, to: string) {
  const dest = frame.destinations.find((d) => d.account === to);
  if (!dest) return null;
  const own = dest.devices[0];
  const body = own.body ?? frame.shared!.body;
  const kind = own.body ? own.kind : frame.shared!.kind;
  return { type: "envelope", id: ids++, from, from_device: 1, ts: Date.now(), kind, body };
}

async function deliver(to: Peer, from: Peer, frames: SendFrame[]): Promise<Action[]> {
  const out: Action[] = [];
  for (const frame of frames) {
    const env = envelope(frame, from.accountId, to.accountId);
    if (!env) continue;
    let got = await to.core.receive(env);
    const fetch = of(got, "FetchKeys")[0];
    if (fetch)
      got = [
        ...got,
        ...(await to.core.keysFetched(fetch.account, fetch.token, await bundleOf(from, false))),
      ];
    out.push(...got);
  }
  return out;
}

describe("group messages over Megolm", () => {
  it("shares the session over Olm, then one shared kind-2 body that members decrypt", async () => {
    const alice = await groupPeer(ALICE);
    const bob = await groupPeer(BOB);
    await alice.core.groupFetched(await serverGroup(alice, [BOB], 1));
    const { clientId } = await alice.core.sendText(`g:${GID}`, "hello group");

    const frames = await sendPass(alice, [bob]);
    expect(frames).toHaveLength(2); // the key share, then the message
    expect(frames[0]!.destinations[0]!.devices[0]!.kind).toBe(0);
    const message = frames[1]!;
    expect(message.id).toBe(clientId);
    expect(message.shared?.kind).toBe(2);
    expect(message.destinations[0]!.devices[0]).toEqual({ device: 1, registration: 4242 });

    // Before its share frame is answered, a second send shares nothing again.
    for (const f of frames) await alice.core.receive({ type: "sent", id: f.id, ts: 5 });
    expect((await alice.store.history(`g:${GID}`))[0]!.status).toBe("sent");

    const got = await deliver(bob, alice, frames);
    expect(events(got)).toContainEqual(
      expect.objectContaining({ type: "Message", text: "hello group", sender: ALICE, group: GID }),
    );
    // Bob does not know the group yet: it asks for it.
    expect(of(got, "FetchGroup")).toEqual([{ type: "FetchGroup", groupId: GID }]);
    const [stored] = await bob.store.history(`g:${GID}`);
    expect(stored).toMatchObject({ body: "hello group", author: ALICE, outgoing: false });

    // The same session again: no new share; a redelivery shows once.
    await alice.core.sendText(`g:${GID}`, "second");
    const again = await sendPass(alice, [bob]);
    expect(again).toHaveLength(1);
    await deliver(bob, alice, again);
    const replay = envelope(again[0]!, ALICE, BOB)!;
    await bob.core.receive(replay);
    expect((await bob.store.history(`g:${GID}`)).map((m) => m.body)).toEqual([
      "hello group",
      "second",
    ]);
  });

  it("a removal rotates the session: the removed member is not addressed nor can it read", async () => {
    const alice = await groupPeer(ALICE);
    const bob = await groupPeer(BOB);
    const carol = await groupPeer(CAROL);
    await alice.core.groupFetched(await serverGroup(alice, [BOB, CAROL], 1));
    await alice.core.sendText(`g:${GID}`, "to both");
    const first = await sendPass(alice, [bob, carol]);
    for (const f of first) await alice.core.receive({ type: "sent", id: f.id, ts: 5 });
    await deliver(carol, alice, first);
    const before = (await alice.store.outboundSession(GID))!.sessionId;

    // Carol removed: the group as fetched after it.
    await alice.core.groupFetched(await serverGroup(alice, [BOB], 3));
    expect((await alice.store.outboundSession(GID))!.rotate).toBe(true);
    await alice.core.sendText(`g:${GID}`, "without carol");
    const after = await sendPass(alice, [bob, carol]);
    expect(after.flatMap((f) => f.destinations.map((d) => d.account))).not.toContain(CAROL);
    const session = (await alice.store.outboundSession(GID))!.sessionId;
    expect(session).not.toBe(before);

    // Even given the new body, Carol has no key for the new session.
    const leaked = { ...envelope(after.at(-1)!, ALICE, BOB)! };
    const got = await carol.core.receive(leaked);
    expect(events(got)).toContainEqual(
      expect.objectContaining({ type: "DecryptionFailed", sender: ALICE }),
    );
    expect((await carol.store.history(`g:${GID}`)).map((m) => m.body)).toEqual([
      "to both",
      "A message could not be decrypted.",
    ]);
    await deliver(bob, alice, after);
    expect((await bob.store.history(`g:${GID}`)).map((m) => m.body)).toEqual(["without carol"]);
  });

  it("opens the sealed state on fetch and lists the group as a conversation", async () => {
    const alice = await groupPeer(ALICE);
    await alice.core.groupFetched(await serverGroup(alice, [BOB], 1));
    const local = await alice.store.group(GID);
    expect(local?.state?.name).toBe("Climbers");
    const convo = (await alice.store.conversations()).find((c) => c.peer === `g:${GID}`);
    expect(convo?.label).toBe("Climbers");
    // A 404 on fetch: this account is out; the group and its name stay.
    await alice.core.groupFetchFailed(
      GID,
      Object.assign(new Error("gone"), { code: "not_found", details: {} }) as never,
    );
    expect((await alice.store.group(GID))?.members.map((m) => m.accountId)).toEqual([BOB]);
  });

  it("a member's leave makes the lowest admin choose a new state key; texts get a 1:1 receipt", async () => {
    const alice = await groupPeer(ALICE);
    const bob = await groupPeer(BOB);
    const group = await serverGroup(alice, [BOB], 1);
    await alice.core.groupFetched(group);
    await bob.core.groupFetched(group);
    await bob.core.sendText(`g:${GID}`, "bye all");
    const text = await sendPass(bob, [alice]);
    for (const f of text) await bob.core.receive({ type: "sent", id: f.id, ts: 5 });
    await deliver(alice, bob, text);
    // The delivery receipt goes to Bob alone, over Olm.
    await alice.core.flush();
    expect((await alice.store.pending(0, 10)).map((i) => i.recipient)).toEqual([BOB]);

    const leave = {
      t: "group_update",
      group: GID,
      revision: 2,
      action: "leave",
      targets: [],
    } as const;
    await bob.core.state.queueContent(`g:${GID}`, encodeContent(leave));
    const got = await deliver(alice, bob, await sendPass(bob, [alice]));
    expect(of(got, "FetchGroup")).toEqual([{ type: "FetchGroup", groupId: GID }]);
    const after = await alice.core.groupFetched({
      ...group,
      revision: 2,
      members: group.members.slice(0, 1),
    });
    expect(of(after, "RotateStateKey")).toEqual([{ type: "RotateStateKey", groupId: GID }]);
    expect(of(after, "ShareStateKey")).toEqual([]); // nobody new
    // Carol is new (joined by a link that may hold an older epoch's key): the lowest admin
    // tells the members the current key; a member that is not the lowest admin does not.
    const joined = await alice.core.groupFetched({
      ...group,
      revision: 3,
      members: [...group.members.slice(0, 1), { account: CAROL, role: "member" }],
    });
    expect(of(joined, "ShareStateKey")).toEqual([{ type: "ShareStateKey", groupId: GID }]);
    const asBob = await bob.core.groupFetched(group);
    expect(of(asBob, "ShareStateKey")).toEqual([]);
    const bobSees = await bob.core.groupFetched({
      ...group,
      revision: 3,
      members: [...group.members, { account: CAROL, role: "member" }],
    });
    expect(of(bobSees, "ShareStateKey")).toEqual([]);
  });

  it("a refused share rotates the next send; a group this account left refuses sends", async () => {
    const alice = await groupPeer(ALICE);
    const bob = await groupPeer(BOB);
    const group = await serverGroup(alice, [BOB], 1);
    await alice.core.groupFetched(group);
    await alice.core.sendText(`g:${GID}`, "one");
    const [share] = await sendPass(alice, [bob]);
    await alice.core.receive({
      type: "error",
      ref: share!.id,
      code: "rate_limited",
      message: "slow",
    });
    expect((await alice.store.outboundSession(GID))!.rotate).toBe(true);

    await alice.core.groupFetched({ ...group, revision: 2, members: group.members.slice(1) });
    await alice.core.sendText(`g:${GID}`, "two");
    const items = await alice.core.nextOutboxItems();
    const refused = await alice.core.prepare(items.at(-1)!);
    expect(of(refused, "SendSettled")[0]).toMatchObject({ error: "forbidden" });
    expect((await alice.store.history(`g:${GID}`)).at(-1)).toMatchObject({
      body: "two",
      status: "failed",
    });
  });
});
