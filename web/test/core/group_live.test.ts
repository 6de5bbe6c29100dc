import { describe, expect, it } from "vitest";
import type { Action } from "../../src/core/actions";
import type { Event } from "../../src/core/events";
import { aggregate, changerOf } from "../../src/core/group_live";
import { decodeContent } from "../../src/crypto/content";
import type { SendFrame } from "../../src/protocol/frames.gen";
import { typingText } from "../../src/ui/typing";
import { type Peer, bundleOf } from "./helpers";
import { STATE, groupPeer, of, serverGroup } from "./group_helpers";

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";
const CAROL = "c0c0c0c0-0000-4000-8000-00000000ca01";
const GID = "7a7a7a7a-1111-4222-8333-444444444444";
const PEER = `g:${GID}`;

const events = (actions: Action[]): Event[] => of(actions, "EmitEvent").map((a) => a.event);

/** Every outbox item of `from`, one pass each, claims answered with the peers' real keys;
 * every frame answered `sent` (so shares count as given). */
async function sendAll(from: Peer, peers: Peer[]): Promise<SendFrame[]> {
  const out: SendFrame[] = [];
  for (const item of await from.core.nextOutboxItems()) {
    let actions = await from.core.prepare(item);
    for (let claim = of(actions, "ClaimKeys")[0]; claim; claim = of(actions, "ClaimKeys")[0]) {
      const peer = [...peers, from].find((p) => p.accountId === claim!.account);
      if (!peer) throw new Error(`claim for ${claim.account} item ${item.recipient}`);
      actions = await from.core.keysClaimed(claim, await bundleOf(peer, true));
    }
    const frames = of(actions, "SendFrame").map((a) => a.frame as SendFrame);
    for (const f of frames) await from.core.receive({ type: "sent", id: f.id, ts: Date.now() });
    out.push(...frames);
  }
  return out;
}

let ids = 5000;
function envelope(frame: SendFrame, from: string, to: string) {
  const dest = frame.destinations.find((d) => d.account === to);
  if (!dest) return null;
  const own = dest.devices[0];
  const body = own.body ?? frame.shared!.body;
  const kind = own.body ? own.kind : frame.shared!.kind;
  const id = frame.ephemeral ? 0 : ids++;
  return { type: "envelope", id, from, from_device: 1, ts: Date.now(), kind, body };
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

const own = async (alice: Peer, id: string) => (await alice.store.message(PEER, true, id))!;

describe("ticks on one's own group messages", () => {
  it("delivered once every member answered, read once every member read", async () => {
    const alice = await groupPeer(ALICE);
    const bob = await groupPeer(BOB);
    const carol = await groupPeer(CAROL);
    const group = await serverGroup(GID, alice, [BOB, CAROL], 1);
    for (const p of [alice, bob, carol]) await p.core.groupFetched(group);
    const { clientId } = await alice.core.sendText(PEER, "who is in?");
    expect((await own(alice, clientId)).extra?.to).toEqual([BOB, CAROL]);
    const frames = await sendAll(alice, [bob, carol]);

    // Bob's delivery receipt alone: not yet delivered to everyone.
    await deliver(bob, alice, frames);
    await bob.core.flush();
    const bobReceipt = await sendAll(bob, [alice]);
    expect(bobReceipt).toHaveLength(1); // 1:1 to the author, not to the group
    expect(bobReceipt[0]!.destinations.map((d) => d.account)).toEqual([ALICE]);
    const got = await deliver(alice, bob, bobReceipt);
    expect(events(got)).toContainEqual(
      expect.objectContaining({ type: "ReceiptEvent", sender: BOB, kind: "delivered" }),
    );
    expect(await own(alice, clientId)).toMatchObject({ status: "sent" });
    expect((await own(alice, clientId)).extra?.receipts).toEqual({ [BOB]: "delivered" });

    await deliver(carol, alice, frames);
    await carol.core.flush();
    await deliver(alice, carol, await sendAll(carol, [alice]));
    expect(await own(alice, clientId)).toMatchObject({ status: "delivered" });

    // Read: Bob's read receipt goes to Alice alone; read once Carol's comes too.
    await bob.core.markRead(PEER, [clientId]);
    const read = await sendAll(bob, [alice]);
    expect(read.flatMap((f) => f.destinations.map((d) => d.account))).toEqual([ALICE]);
    await deliver(alice, bob, read);
    expect(await own(alice, clientId)).toMatchObject({ status: "delivered" });
    await carol.core.markRead(PEER, [clientId]);
    await deliver(alice, carol, await sendAll(carol, [alice]));
    expect(await own(alice, clientId)).toMatchObject({ status: "read" });
    // A late delivery receipt does not take the tick back.
    expect((await own(alice, clientId)).extra?.receipts).toEqual({
      [BOB]: "read",
      [CAROL]: "read",
    });
  });

  it("aggregates over the members still in the group", () => {
    expect(aggregate([BOB, CAROL], [ALICE, BOB, CAROL], { [BOB]: "read" })).toBeNull();
    expect(aggregate([BOB, CAROL], [ALICE, BOB], { [BOB]: "delivered" })).toBe("delivered");
    expect(
      aggregate([BOB, CAROL], [ALICE, BOB, CAROL], { [BOB]: "read", [CAROL]: "delivered" }),
    ).toBe("delivered");
    expect(aggregate([BOB], [ALICE, BOB], { [BOB]: "read" })).toBe("read");
    expect(aggregate([BOB], [ALICE], { [BOB]: "read" })).toBeNull(); // nobody left to wait for
  });
});

describe("typing in a group", () => {
  it("goes over Megolm, ephemeral, once no key is owed; members see who types", async () => {
    const alice = await groupPeer(ALICE);
    const bob = await groupPeer(BOB);
    const group = await serverGroup(GID, alice, [BOB], 1);
    for (const p of [alice, bob]) await p.core.groupFetched(group);
    // No Olm session with Bob yet, so no device to tell: none.
    expect(await alice.core.typingFrame(PEER, true)).toBeNull();
    await alice.core.sendText(PEER, "hi");
    await deliver(bob, alice, await sendAll(alice, [bob]));
    const frame = (await alice.core.typingFrame(PEER, true))!;
    expect(frame.ephemeral).toBe(true);
    expect(frame.shared?.kind).toBe(2);
    expect(frame.destinations.map((d) => d.account)).toEqual([BOB]);
    const got = await deliver(bob, alice, [frame]);
    expect(events(got)).toContainEqual({
      type: "TypingEvent",
      sender: ALICE,
      started: true,
      group: GID,
    });
    expect((await bob.store.history(PEER)).map((m) => m.body)).toEqual(["hi"]); // never stored
  });

  it("a non-member sends no typing", async () => {
    const alice = await groupPeer(ALICE);
    await alice.core.groupFetched({ ...(await serverGroup(GID, alice, [BOB], 1)), members: [] });
    expect(await alice.core.typingFrame(PEER, true)).toBeNull();
  });

  it("names one, two or more typers", () => {
    expect(typingText([])).toBe("");
    expect(typingText(["Alice"])).toBe("Alice is typing…");
    expect(typingText(["Alice", "Bob"])).toBe("Alice and Bob are typing…");
    expect(typingText(["Alice", "Bob", "Carol"])).toBe("Alice, Bob and 1 other are typing…");
    expect(typingText(["A", "B", "C", "D"])).toBe("A, B and 2 others are typing…");
  });
});

describe("a group's disappearing timer", () => {
  it("a fetched timer change adds a notice, and texts sent after it disappear", async () => {
    const alice = await groupPeer(ALICE);
    const bob = await groupPeer(BOB);
    await alice.core.groupFetched(await serverGroup(GID, alice, [BOB], 1));
    // Bob's `state` update arrived before the fetch that shows the change: he is named.
    alice.core.groups!.sync.claim(GID, BOB);
    await alice.store.setLabel(BOB, "@bob");
    const after = await alice.core.groupFetched(
      await serverGroup(GID, alice, [BOB], 2, { ...STATE, timerSeconds: 30 }),
    );
    expect(events(after)).toContainEqual({
      type: "TimerChanged",
      peer: PEER,
      seconds: 30,
      by: BOB,
    });
    expect((await alice.store.history(PEER)).map((m) => [m.status, m.body])).toEqual([
      ["notice", "@bob set disappearing messages to 30 seconds"],
    ]);
    // The same revision fetched again: no second notice.
    await alice.core.groupFetched(
      await serverGroup(GID, alice, [BOB], 2, { ...STATE, timerSeconds: 30 }),
    );
    expect(await alice.store.history(PEER)).toHaveLength(1);

    const { clientId } = await alice.core.sendText(PEER, "gone soon");
    const [item] = (await alice.core.nextOutboxItems()).filter((i) => i.clientId === clientId);
    expect(item!.ttl).toBe(30);
    const text = decodeContent(item!.content);
    expect(text).toMatchObject({ t: "text", expires: 30, group: GID });
    const mine = await own(alice, clientId);
    expect(mine.expiresAt).toBe(mine.ts + 30_000);

    // Bob receives it with its expiry and the sweep deletes it then.
    await bob.core.groupFetched(
      await serverGroup(GID, alice, [BOB], 2, { ...STATE, timerSeconds: 30 }),
    );
    const sent = await sendAll(alice, [bob]);
    // The server keeps it no longer than its timer (the time left: it has not waited).
    expect(sent.find((f) => f.id === clientId)?.ttl).toBe(30);
    await deliver(bob, alice, sent);
    const [got] = await bob.store.history(PEER);
    expect(got).toMatchObject({ body: "gone soon", author: ALICE });
    expect(got!.expiresAt).toBe(mine.ts + 30_000);
    expect(await bob.store.expire(got!.expiresAt! - 1)).toEqual([]);
    expect((await bob.store.expire(got!.expiresAt!)).map((r) => r.clientId)).toEqual([clientId]);
    expect(await bob.store.history(PEER)).toEqual([]);
  });

  it("turned off by someone the group does not let edit: 'Someone'", async () => {
    const alice = await groupPeer(ALICE);
    await alice.core.groupFetched(
      await serverGroup(GID, alice, [BOB], 1, { ...STATE, timerSeconds: 60 }),
    );
    const group = (await alice.store.group(GID))!;
    expect(changerOf(group, CAROL)).toBe(""); // not a member
    expect(
      changerOf({ ...group, settings: { ...group.settings, membersCanEdit: false } }, BOB),
    ).toBe("");
    expect(changerOf(group, BOB)).toBe(BOB);
    await alice.core.groupFetched(await serverGroup(GID, alice, [BOB], 2));
    expect((await alice.store.history(PEER)).map((m) => m.body)).toEqual([
      "Someone turned off disappearing messages",
    ]);
  });

  it("a 'Someone' notice is named when the update of its revision comes after the fetch", async () => {
    const alice = await groupPeer(ALICE);
    await alice.core.groupFetched(await serverGroup(GID, alice, [BOB], 1));
    await alice.store.setLabel(BOB, "@bob");
    await alice.core.groupFetched(
      await serverGroup(GID, alice, [BOB], 2, { ...STATE, timerSeconds: 300 }),
    );
    const body = async () => (await alice.store.history(PEER)).map((m) => m.body);
    expect(await body()).toEqual(["Someone set disappearing messages to 5 minutes"]);
    await alice.core.groups!.sync.claim(GID, BOB, 1); // an older update: not this change
    expect(await body()).toEqual(["Someone set disappearing messages to 5 minutes"]);
    await alice.core.groups!.sync.claim(GID, BOB, 2);
    expect(await body()).toEqual(["@bob set disappearing messages to 5 minutes"]);
  });
});
