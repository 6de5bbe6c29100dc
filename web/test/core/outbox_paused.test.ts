import { describe, expect, it } from "vitest";
import type { Action, ClaimKeys } from "../../src/core/actions";
import type { Event } from "../../src/core/events";
import { SEND_PAUSED } from "../../src/core/outbox_paused";
import { ClientCore } from "../../src/core/state";
import { verification } from "../../src/core/verified";
import type { SendFrame } from "../../src/protocol/frames.gen";
import { IdbStore } from "../../src/store/idb";
import { groupPeer, of, serverGroup } from "./group_helpers";
import { bundleOf, envelopeFor, makePeer, type Peer } from "./helpers";

// Texts to a verified contact whose key changed wait in the outbox (core/outbox_paused.ts,
// as the SDK's tests/unit/client/test_verified.py): paused, not retried, not pending, kept
// across a reload, resumed in order to the new key once verified or accepted.

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";
const GID = "9a9a9a9a-1111-4222-8333-444444444444";

const events = (actions: Action[]): Event[] => of(actions, "EmitEvent").map((a) => a.event);
const frames = (actions: Action[]): SendFrame[] =>
  of(actions, "SendFrame").map((a) => a.frame as SendFrame);

/** One outbox pass of `alice`, as the runner makes it: every item, every claim answered with
 * `bob`'s real keys (and Alice's own listing); how many claims it took. */
async function pass(alice: Peer, bob: Peer): Promise<{ actions: Action[]; claims: number }> {
  const actions: Action[] = [];
  let claims = 0;
  for (const item of await alice.core.nextOutboxItems()) {
    const first = await alice.core.prepare(item);
    const waiting: ClaimKeys[] = of(first, "ClaimKeys");
    actions.push(...first.filter((a) => a.type !== "ClaimKeys"));
    while (waiting.length) {
      const claim = waiting.shift()!;
      claims++;
      const bundle = claim.listing ? await bundleOf(alice, false) : await bundleOf(bob, true);
      const got = await alice.core.keysClaimed(claim, bundle);
      waiting.push(...of(got, "ClaimKeys"));
      actions.push(...got.filter((a) => a.type !== "ClaimKeys"));
    }
  }
  return { actions, claims };
}

/** `to` receives a send frame from `from`, fetching `from`'s keys when its core asks. */
async function deliver(to: Peer, from: Peer, frame: SendFrame): Promise<Action[]> {
  const out = await to.core.receive(envelopeFor(frame, from.accountId, to.accountId));
  const fetch = of(out, "FetchKeys")[0];
  if (!fetch) return out;
  return [
    ...out,
    ...(await to.core.keysFetched(fetch.account, fetch.token, await bundleOf(from, false))),
  ];
}

const texts = (actions: Action[]) =>
  events(actions).flatMap((e) => (e.type === "Message" ? [e.text] : []));

/** Alice talks to Bob, marks him verified; Bob registers again (new device and master key).
 * Alice's next text goes to the old device, the server answers stale_devices, and the claim
 * that follows is where the new key shows: the text is paused there. */
async function pausedAfterReRegistering(): Promise<{
  alice: Peer;
  newBob: Peer;
  clientId: string;
}> {
  const alice = await makePeer(ALICE);
  const bob = await makePeer(BOB);
  await alice.core.sendText(BOB, "to the old key");
  const [first] = frames((await pass(alice, bob)).actions);
  await alice.core.receive({ type: "sent", id: first!.id, ts: 1 });
  await alice.core.markVerified(BOB, bob.master.publicB64);
  expect(verification(await alice.store.contact(BOB))).toBe("verified");

  const newBob = await makePeer(BOB);
  const { clientId } = await alice.core.sendText(BOB, "one");
  const toOld = await pass(alice, newBob);
  expect(toOld.claims).toBe(0); // the old session: Alice does not know yet
  expect(frames(toOld.actions)).toHaveLength(1);
  await alice.core.receive({
    type: "error",
    code: "stale_devices",
    ref: clientId,
    message: "stale devices",
    accounts: [{ account: BOB, missing: [], extra: [], stale: [1] }],
  });
  const paused = await pass(alice, newBob);
  expect(paused.claims).toBe(1); // Bob's new keys: the pin moves
  expect(paused.actions).toContainEqual({
    type: "SendSettled",
    clientId,
    ts: 0,
    error: SEND_PAUSED,
  });
  expect(events(paused.actions)).toContainEqual({ type: "IdentityChanged", accountId: BOB });
  expect(events(paused.actions)).toContainEqual({
    type: "SendPausedEvent",
    id: clientId,
    recipient: BOB,
  });
  expect(frames(paused.actions)).toEqual([]); // nothing encrypted to the new key
  return { alice, newBob, clientId };
}

describe("Outbox: a text to a verified contact whose key changed is paused", () => {
  it("is held, not retried, not pending, and still held after a reload", async () => {
    const { alice, newBob, clientId } = await pausedAfterReRegistering();
    expect(verification(await alice.store.contact(BOB))).toBe("verified_key_changed");
    const row = (await alice.store.history(BOB)).find((m) => m.clientId === clientId)!;
    expect(row.status).toBe("queued"); // not failed: it waits
    expect(await alice.store.pausedIds(BOB)).toEqual([clientId]);
    expect(await alice.store.outboxSize()).toBe(0);
    expect(await alice.core.nextOutboxItems()).toEqual([]);
    expect((await pass(alice, newBob)).actions).toEqual([]); // a wake sends nothing

    // A later text is paused at once, before any claim.
    const two = await alice.core.sendText(BOB, "two");
    const again = await pass(alice, newBob);
    expect(again.claims).toBe(0);
    expect(frames(again.actions)).toEqual([]);
    expect(await alice.store.pausedIds(BOB)).toEqual([clientId, two.clientId]);

    // A reload: the store opened again, a new core over it.
    alice.store.close();
    const store = await IdbStore.open(alice.dbName!);
    const core = new ClientCore(store, alice.olm, ALICE, 1);
    expect(await store.pausedIds(BOB)).toEqual([clientId, two.clientId]);
    expect(await store.outboxSize()).toBe(0);
    expect(await core.nextOutboxItems()).toEqual([]);
    expect((await store.history(BOB)).map((m) => m.status)).toEqual([
      "sent",
      "queued", // "one"
      "notice", // the changed safety number, noted at the claim
      "queued", // "two"
    ]);

    // Accepting the new number resumes them, in their old order, to the new key.
    const reloaded = { ...alice, store, core };
    expect(await core.acceptIdentity(BOB)).toEqual([{ type: "WakeOutbox", delay: 0 }]);
    expect(verification(await store.contact(BOB))).toBe("unverified");
    expect(await store.pausedIds(BOB)).toEqual([]);
    const items = await core.nextOutboxItems();
    expect(items.map((i) => i.clientId)).toEqual([clientId, two.clientId]);
    const sent = frames((await pass(reloaded, newBob)).actions);
    expect(sent.map((f) => f.id)).toEqual([clientId, two.clientId]);
    const got: Action[] = [];
    for (const frame of sent) got.push(...(await deliver(newBob, reloaded, frame)));
    expect(texts(got)).toEqual(["one", "two"]);
    for (const frame of sent) await core.receive({ type: "sent", id: frame.id, ts: 9 });
    const rows = await store.history(BOB);
    const status = (id: string) => rows.find((m) => m.clientId === id)?.status;
    expect([status(clientId), status(two.clientId)]).toEqual(["sent", "sent"]);
  });

  it("resumes when the new number is marked verified; receipts went meanwhile, typing not", async () => {
    const { alice, newBob, clientId } = await pausedAfterReRegistering();
    // A read receipt carries no user content: it goes to the new key while the text waits.
    await alice.core.markRead(BOB, ["an-id-bob-chose"]);
    const receipt = frames((await pass(alice, newBob)).actions);
    expect(receipt).toHaveLength(1);
    expect(events(await deliver(newBob, alice, receipt[0]!))).toContainEqual(
      expect.objectContaining({ type: "ReceiptEvent", kind: "read", ids: ["an-id-bob-chose"] }),
    );
    expect(await alice.core.typingFrame(BOB, true)).toBeNull();
    expect(await alice.store.pausedIds(BOB)).toEqual([clientId]);

    expect(await alice.core.markVerified(BOB, newBob.master.publicB64)).toEqual([
      { type: "WakeOutbox", delay: 0 },
    ]);
    expect(verification(await alice.store.contact(BOB))).toBe("verified");
    const [resent] = frames((await pass(alice, newBob)).actions);
    expect(resent!.id).toBe(clientId);
    expect(texts(await deliver(newBob, alice, resent!))).toEqual(["one"]);
    expect(await alice.core.typingFrame(BOB, true)).not.toBeNull();
    // Nothing is held any more: marking again or accepting wakes nothing.
    expect(await alice.core.markVerified(BOB, newBob.master.publicB64)).toEqual([]);
    expect(await alice.core.acceptIdentity(BOB)).toEqual([]);
  });

  it("resumes, when a chat is shown, what was paused after another tab accepted", async () => {
    const { alice, newBob, clientId } = await pausedAfterReRegistering();
    expect(await alice.core.resumeIfAccepted(BOB)).toEqual([]); // still "key changed"
    expect(await alice.store.pausedIds(BOB)).toEqual([clientId]);
    // Another tab accepted the new number in the shared database (the contact row only),
    // after this tab's outbox had paused the text.
    const contact = (await alice.store.contact(BOB))!;
    await alice.store.commit({ contacts: [{ ...contact, verifiedKey: null }] });
    expect(verification(await alice.store.contact(BOB))).toBe("unverified");
    expect(await alice.core.resumeIfAccepted(BOB)).toEqual([{ type: "WakeOutbox", delay: 0 }]);
    expect(await alice.store.pausedIds(BOB)).toEqual([]);
    const [sent] = frames((await pass(alice, newBob)).actions);
    expect(texts(await deliver(newBob, alice, sent!))).toEqual(["one"]);
    expect(await alice.core.resumeIfAccepted(BOB)).toEqual([]); // nothing held any more
  });

  it("does not pause a group text to a group with that contact in it (as the SDK)", async () => {
    const alice = await groupPeer(ALICE);
    const bob = await groupPeer(BOB);
    await alice.core.checkBundle(await bundleOf(bob, false));
    await alice.core.markVerified(BOB, bob.master.publicB64);
    const newBob = await groupPeer(BOB);
    await alice.core.checkBundle(await bundleOf(newBob, false));
    expect(verification(await alice.store.contact(BOB))).toBe("verified_key_changed");

    await alice.core.groupFetched(await serverGroup(GID, alice, [BOB]));
    const { clientId } = await alice.core.sendText(`g:${GID}`, "hello group");
    const sent = frames((await pass(alice, newBob)).actions);
    expect(sent.map((f) => f.id)).toContain(clientId); // the share, then the message
    expect(await alice.store.pausedIds(`g:${GID}`)).toEqual([]);
    // And a 1:1 text to Bob still waits.
    const one = await alice.core.sendText(BOB, "just to bob");
    expect(frames((await pass(alice, newBob)).actions)).toEqual([]);
    expect(await alice.store.pausedIds(BOB)).toEqual([one.clientId]);
  });
});
