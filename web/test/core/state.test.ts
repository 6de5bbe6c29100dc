import { describe, expect, it } from "vitest";
import type { Action, ClaimKeys } from "../../src/core/actions";
import type { SendFrame } from "../../src/protocol/frames.gen";
import type { Event } from "../../src/core/events";
import { ServerError } from "../../src/core/errors";
import { bundleOf, envelopeFor, makePeer, type Peer } from "./helpers";

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";

const of = <T extends Action["type"]>(actions: Action[], type: T) =>
  actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
const events = (actions: Action[]): Event[] => of(actions, "EmitEvent").map((a) => a.event);

/** Alice's outbox, one pass: prepare, answer the claim from Bob's real keys, the send frame. */
async function sendOne(alice: Peer, bob: Peer): Promise<SendFrame> {
  const [item] = await alice.core.nextOutboxItems();
  let actions = await alice.core.prepare(item!);
  // One claim per account: Bob's, and the listing of Alice's own devices (for sent copies).
  for (const claim of of(actions, "ClaimKeys")) {
    const bundle = claim.listing ? await bundleOf(alice, false) : await bundleOf(bob, true);
    actions = [...actions, ...(await alice.core.keysClaimed(claim, bundle))];
  }
  const [send] = of(actions, "SendFrame");
  return send!.frame as SendFrame;
}

/** Bob receives an envelope, fetching Alice's keys when the core asks. */
async function receive(bob: Peer, alice: Peer, envelope: object): Promise<Action[]> {
  const out = await bob.core.receive(envelope as Record<string, unknown>);
  const fetch = of(out, "FetchKeys")[0];
  if (!fetch) return out;
  return [
    ...out,
    ...(await bob.core.keysFetched(fetch.account, fetch.token, await bundleOf(alice, false))),
  ];
}

describe("ClientCore, 1:1 over Olm", () => {
  it("sends a text, stores it before the ack, answers with a delivered receipt", async () => {
    const alice = await makePeer(ALICE);
    const bob = await makePeer(BOB);
    await alice.core.sendText(BOB, "hello bob");
    expect((await alice.store.history(BOB))[0]).toMatchObject({
      body: "hello bob",
      status: "queued",
    });

    const frame = await sendOne(alice, bob);
    expect(frame.destinations[0]!.devices[0]).toMatchObject({
      device: 1,
      registration: 4242,
      kind: 0,
    });
    const sent = await alice.core.receive({ type: "sent", id: frame.id, ts: 123 });
    expect(of(sent, "SendSettled")[0]).toMatchObject({ clientId: frame.id, error: null });
    expect(await alice.store.outboxSize()).toBe(0);
    expect((await alice.store.history(BOB))[0]!.status).toBe("sent");

    const env = envelopeFor(frame, ALICE, BOB);
    const got = await receive(bob, alice, env);
    expect(events(got)).toContainEqual(
      expect.objectContaining({ type: "Message", text: "hello bob", sender: ALICE }),
    );
    expect(await bob.store.seen(env.id)).toBe(true);
    expect((await bob.store.conversations())[0]).toMatchObject({ peer: ALICE, unread: 1 });

    // The ack and the receipt go on the flush; the receipt is an outbox item for Alice.
    const flushed = await bob.core.flush();
    expect(of(flushed, "SendFrame").map((a) => a.frame)).toContainEqual({
      type: "ack",
      ids: [env.id],
    });
    const receiptFrame = await sendOne(bob, alice);
    expect(receiptFrame.destinations[0]!.devices[0]!.kind).toBe(1); // Bob answers in the session Alice started
    const back = await receive(alice, bob, envelopeFor(receiptFrame, BOB, ALICE));
    expect(events(back)).toContainEqual({
      type: "ReceiptEvent",
      sender: BOB,
      kind: "delivered",
      ids: [frame.id],
    });
    expect((await alice.store.history(BOB))[0]!.status).toBe("delivered");

    // A redelivered envelope is acknowledged, not shown twice.
    const again = await receive(bob, alice, env);
    expect(events(again)).toEqual([]);
    expect(bob.core.state.pendingAcks).toContain(env.id);
  });

  it("typing needs a session and no keys; it shows as a TypingEvent", async () => {
    const alice = await makePeer(ALICE);
    const bob = await makePeer(BOB);
    expect(await alice.core.typingFrame(BOB, true)).toBeNull();
    await alice.core.sendText(BOB, "first");
    const first = await sendOne(alice, bob);
    await receive(bob, alice, envelopeFor(first, ALICE, BOB));
    const typing = (await alice.core.typingFrame(BOB, true))!;
    expect(typing.ephemeral).toBe(true);
    const got = await receive(bob, alice, envelopeFor(typing, ALICE, BOB));
    expect(events(got)).toContainEqual({ type: "TypingEvent", sender: ALICE, started: true });
  });

  it("a send refused for good fails its message; an unknown recipient fails the claim", async () => {
    const alice = await makePeer(ALICE);
    const bob = await makePeer(BOB);
    await alice.core.sendText(BOB, "to nobody");
    const [item] = await alice.core.nextOutboxItems();
    const [claim] = (await alice.core.prepare(item!)) as ClaimKeys[];
    const failed = await alice.core.keysClaimFailed(
      claim!,
      new ServerError("not_found", "no such account", 404),
    );
    expect(events(failed)).toContainEqual(
      expect.objectContaining({ type: "SendFailedEvent", code: "not_found" }),
    );
    expect((await alice.store.history(BOB))[0]!.status).toBe("failed");
    expect(await alice.store.outboxSize()).toBe(0);
    void bob;
  });

  it("keys that do not verify make the envelope undecryptable, acknowledged and told", async () => {
    const alice = await makePeer(ALICE);
    const bob = await makePeer(BOB);
    await alice.core.sendText(BOB, "hello");
    const frame = await sendOne(alice, bob);
    const env = envelopeFor(frame, ALICE, BOB);
    const out = await bob.core.receive(env);
    const fetch = of(out, "FetchKeys")[0]!;
    const forged = await bundleOf(alice, false);
    forged.devices[0]!.signature = forged.devices[0]!.signature.replace(/^./, (c) =>
      c === "A" ? "B" : "A",
    );
    const got = await bob.core.keysFetched(fetch.account, fetch.token, forged);
    expect(events(got)).toContainEqual(
      expect.objectContaining({ type: "DecryptionFailed", sender: ALICE }),
    );
    expect(bob.core.state.pendingAcks).toContain(env.id);
    expect((await bob.store.history(ALICE))[0]!.status).toBe("undecryptable");
  });

  it("refetches a sender's keys once when a message fails with the cached ones", async () => {
    const alice = await makePeer(ALICE);
    const bob = await makePeer(BOB);
    await alice.core.sendText(BOB, "before");
    await receive(bob, alice, envelopeFor(await sendOne(alice, bob), ALICE, BOB));
    // Alice registers again: same account and device, new keys; Bob still caches the old ones.
    const again = await makePeer(ALICE);
    await again.core.sendText(BOB, "after registering again");
    const env = envelopeFor(await sendOne(again, bob), ALICE, BOB);
    const out = await bob.core.receive(env);
    const fetch = of(out, "FetchKeys")[0]!;
    expect(fetch.reason).toBe("refetch");
    const got = await bob.core.keysFetched(
      fetch.account,
      fetch.token,
      await bundleOf(again, false),
    );
    expect(events(got)).toContainEqual({ type: "IdentityChanged", accountId: ALICE });
    expect(events(got)).toContainEqual(
      expect.objectContaining({ type: "Message", text: "after registering again" }),
    );
    // A second failure within the minute is not refetched: it is undecryptable at once.
    const forged = { ...env, id: env.id + 1000, body: env.body!.replace(/^./, "A") };
    const failed = await bob.core.receive(forged);
    expect(of(failed, "FetchKeys")).toEqual([]);
  });

  it("rejects malformed envelopes instead of stopping the queue", async () => {
    const bob = await makePeer(BOB);
    await bob.core.receive({
      type: "envelope",
      id: 7,
      from: "not-an-account",
      from_device: 1,
      ts: 1,
      kind: 0,
      body: "x",
    });
    const flushed = await bob.core.flush();
    expect(of(flushed, "SendFrame").map((a) => a.frame)).toContainEqual({
      type: "reject",
      ids: [7],
      reason: "malformed",
    });
  });
});
