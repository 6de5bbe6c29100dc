import { describe, expect, it } from "vitest";
import type { Action } from "../../src/core/actions";
import { CoreState } from "../../src/core/context";
import type { Event } from "../../src/core/events";
import {
  ASKED_TO_RESEND,
  MAX_REQUESTS_PER_DEVICE,
  MAX_RESENDS_PER_MESSAGE,
  MAX_TRACKED_DEVICES,
  RESEND_WINDOW_MS,
  RequestLimiter,
  answerRetry,
  planResend,
  resendContent,
} from "../../src/core/retry";
import type { StoredMessage } from "../../src/core/types";
import { type Text, decodeContent, encodeContent } from "../../src/crypto/content";
import type { Attachment } from "../../src/crypto/rich";
import { b64encode } from "../../src/protocol/codec";
import type { SendFrame } from "../../src/protocol/frames.gen";
import { IdbStore } from "../../src/store/idb";
import { bundleOf, envelopeFor, makePeer, type Peer } from "./helpers";

// Retry requests in the browser (core/retry.ts), as the SDK's tests/unit/client/test_retry.py
// and the lost-session case of tests/integration/test_rereg.py: the sender's resend rules and
// bounds, the receiver's request cap, and a lost session healed between two real profiles.

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";
const NOW = 1_700_000_000_000;

const of = <T extends Action["type"]>(actions: Action[], type: T) =>
  actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
const events = (actions: Action[]): Event[] => of(actions, "EmitEvent").map((a) => a.event);

function sent(over: Partial<StoredMessage> = {}): StoredMessage {
  return {
    peer: BOB,
    clientId: "m1",
    outgoing: true,
    device: 1,
    ts: NOW - 5000,
    body: "hello",
    status: "sent",
    serverTs: NOW - 1000,
    unread: false,
    ...over,
  };
}

describe("planResend", () => {
  it("resends only its own sent messages, within the window, at most 3 times", () => {
    expect(planResend(sent(), 0, NOW)).toHaveProperty("resend");
    expect(planResend(sent({ status: "read" }), 0, NOW)).toHaveProperty("resend");
    expect(planResend(null, 0, NOW)).toHaveProperty("reason");
    expect(planResend(sent({ outgoing: false, status: "received" }), 0, NOW)).toHaveProperty(
      "reason",
    );
    expect(planResend(sent({ status: "queued", serverTs: 0 }), 0, NOW)).toHaveProperty("reason");
    expect(planResend(sent({ deleted: true }), 0, NOW)).toHaveProperty("reason");
    expect(planResend(sent({ expiresAt: NOW }), 0, NOW)).toHaveProperty("reason");
    const edge = sent({ serverTs: NOW - RESEND_WINDOW_MS });
    expect(planResend(edge, 0, NOW)).toHaveProperty("resend");
    const old = sent({ serverTs: NOW - RESEND_WINDOW_MS - 1 });
    expect(planResend(old, 0, NOW)).toHaveProperty("reason");
    expect(planResend(sent(), MAX_RESENDS_PER_MESSAGE - 1, NOW)).toHaveProperty("resend");
    expect(planResend(sent(), MAX_RESENDS_PER_MESSAGE, NOW)).toEqual({
      reason: "the message was resent 3 times already",
    });
  });
});

describe("RequestLimiter", () => {
  it("caps per device and window, and tracks a bounded number of devices", () => {
    const limiter = new RequestLimiter(2, 1000, 2);
    const [a, b, c] = [`${BOB}/1`, `${BOB}/2`, `${BOB}/3`];
    expect(limiter.allow(a, 0) && limiter.allow(a, 10)).toBe(true);
    expect(limiter.allow(a, 20)).toBe(false);
    expect(limiter.allow(b, 20)).toBe(true); // another device has its own count
    expect(limiter.allow(a, 1005)).toBe(true); // the first request left the window
    expect(limiter.allow(a, 1006)).toBe(false);
    // Bounded: a third device pushes out the least recently asked (b), whose count restarts.
    expect(limiter.allow(c, 1007)).toBe(true);
    expect(limiter.allow(b, 1008) && limiter.allow(b, 1009)).toBe(true);
  });

  it("defaults to 10 per device per hour and 1024 devices", () => {
    const limiter = new RequestLimiter();
    const allowed = Array.from({ length: 12 }, (_, i) => limiter.allow("x/1", NOW + i));
    expect(allowed.filter(Boolean)).toHaveLength(MAX_REQUESTS_PER_DEVICE);
    expect(limiter.allow("x/1", NOW + 3_600_000 - 1)).toBe(false);
    expect(limiter.allow("x/1", NOW + 3_600_000)).toBe(true);
    for (let d = 1; d <= MAX_TRACKED_DEVICES + 5; d++) limiter.allow(`y/${d}`, NOW);
    expect(limiter.tracked).toBe(MAX_TRACKED_DEVICES);
  });
});

describe("resendContent", () => {
  it("keeps the id, body, rich fields and what is left of the timer", () => {
    const photo: Attachment = {
      id: "AAECAwQFBgcICQoLDA0ODw",
      key: new Uint8Array(64).fill(1),
      digest: new Uint8Array(32).fill(2),
      size: 2048,
      contentType: "image/png",
    };
    const m = sent({
      body: "look",
      serverTs: NOW - 9_500,
      expiresAt: NOW - 10_000 + 60_000, // a 60 s timer from the sender's clock
      extra: {
        attachments: [photo],
        reply: { id: "q1", author: BOB, body: "earlier" },
        forwarded: true,
      },
    });
    const { text, ttl } = resendContent(m, NOW);
    expect(text).toMatchObject({ t: "text", id: "m1", body: "look", forwarded: true });
    expect(text.attachments).toEqual([photo]);
    expect(text.reply).toEqual({ id: "q1", author: BOB, body: "earlier" });
    // Receivers compute ts + exp * 1000: still (within a second) when the original expires.
    expect(text.ts + text.expires! * 1000 - m.expiresAt!).toBeGreaterThanOrEqual(0);
    expect(text.ts + text.expires! * 1000 - m.expiresAt!).toBeLessThan(1000);
    expect(ttl).toBe(50); // 60 s from the original, 10 s of which have passed
    expect(resendContent(sent(), NOW)).toEqual({
      text: { t: "text", id: "m1", body: "hello", ts: NOW - 1000 },
    });
  });
});

/** A store with Alice's sent (and one received) messages, and a core state on it at NOW. */
async function aliceAt(now: number): Promise<{ alice: Peer; state: CoreState }> {
  const alice = await makePeer(ALICE);
  await alice.store.commit({
    messages: [
      sent(),
      sent({ clientId: "old", serverTs: NOW - RESEND_WINDOW_MS - 1, body: "old" }),
      sent({ clientId: "in", outgoing: false, status: "received", serverTs: NOW - 3000 }),
    ],
  });
  const state = new CoreState(alice.store, alice.olm, ALICE, 1, () => now);
  return { alice, state };
}

async function resends(store: IdbStore): Promise<Text[]> {
  const items = await store.pending(0, 100);
  return items.map((i) => decodeContent(i.content) as Text);
}

describe("answerRetry (the sender's side)", () => {
  it("resends a message by server ts or id at most 3 times, counted across a reload", async () => {
    const { alice, state } = await aliceAt(NOW);
    const request = { t: "retry" as const, ts: NOW - 1000, device: 1 };
    for (let i = 0; i < MAX_RESENDS_PER_MESSAGE + 2; i++) await answerRetry(state, BOB, 1, request);
    const texts = await resends(alice.store);
    expect(texts).toHaveLength(MAX_RESENDS_PER_MESSAGE);
    for (const t of texts)
      expect(t).toEqual({ t: "text", id: "m1", body: "hello", ts: NOW - 1000 });
    const items = await alice.store.pending(0, 100);
    expect(new Set(items.map((i) => i.clientId)).size).toBe(3); // a new outbox id each
    expect(items.every((i) => i.recipient === BOB && !i.isText)).toBe(true);
    // Every request renews the session with the asking device, resent or not.
    expect([...state.renew]).toEqual([`${BOB}/1`]);
    expect(of(state.take(), "WakeOutbox")).toHaveLength(3);
    expect(await alice.store.resendCount(BOB, "m1")).toBe(MAX_RESENDS_PER_MESSAGE);

    // The count is in IndexedDB: a reloaded profile does not resend it again, by id either.
    alice.store.close();
    const reopened = await IdbStore.open(alice.dbName!);
    const again = new CoreState(reopened, alice.olm, ALICE, 1, () => NOW);
    await answerRetry(again, BOB, 1, { t: "retry", ts: 0, device: 1, id: "m1" });
    expect(await resends(reopened)).toHaveLength(MAX_RESENDS_PER_MESSAGE);
    expect(await reopened.resendCount(BOB, "m1")).toBe(MAX_RESENDS_PER_MESSAGE);
  });

  it("drops what it must not resend", async () => {
    const { alice, state } = await aliceAt(NOW);
    await answerRetry(state, BOB, 1, { t: "retry", ts: NOW - 1000, device: 2 }); // another device
    expect(state.renew.size).toBe(0); // that device answers it, not this one
    await answerRetry(state, BOB, 1, { t: "retry", ts: NOW - 1, device: 1 }); // nothing then
    await answerRetry(state, BOB, 1, { t: "retry", ts: NOW - RESEND_WINDOW_MS - 1, device: 1 });
    await answerRetry(state, BOB, 1, { t: "retry", ts: NOW - 3000, device: 1 }); // not ours
    await answerRetry(state, BOB, 1, { t: "retry", ts: 0, device: 1, id: "in" }); // not ours
    await answerRetry(state, ALICE, 1, { t: "retry", ts: NOW - 1000, device: 1 }); // other peer
    expect(await alice.store.outboxSize()).toBe(0);
    // A day later the message itself is out of the window.
    const late = new CoreState(alice.store, alice.olm, ALICE, 1, () => NOW + RESEND_WINDOW_MS);
    await answerRetry(late, BOB, 1, { t: "retry", ts: NOW - 1000, device: 1 });
    expect(await alice.store.outboxSize()).toBe(0);
  });
});

// Two real profiles ------------------------------------------------------------------------

/** `from`'s outbox, one item: prepare, answer its claims with real keys, the frame sent and
 * acknowledged (`sent` at `ts`); the envelope `to` gets, with that server ts. */
async function deliver(from: Peer, to: Peer, ts = Date.now()) {
  const [item] = await from.core.nextOutboxItems();
  let actions = await from.core.prepare(item!);
  for (const claim of of(actions, "ClaimKeys")) {
    const bundle = claim.listing ? await bundleOf(from, false) : await bundleOf(to, true);
    actions = [...actions, ...(await from.core.keysClaimed(claim, bundle))];
  }
  const frame = of(actions, "SendFrame")[0]!.frame as SendFrame;
  await from.core.receive({ type: "sent", id: frame.id, ts });
  return { ...envelopeFor(frame, from.accountId, to.accountId), ts };
}

/** `to` takes an envelope, fetching the sender's (unchanged) keys when its core asks. */
async function take(to: Peer, from: Peer, envelope: object): Promise<Action[]> {
  const out = await to.core.receive(envelope as Record<string, unknown>);
  const fetch = of(out, "FetchKeys")[0];
  if (!fetch) return out;
  const bundle = await bundleOf(from, false);
  return [...out, ...(await to.core.keysFetched(fetch.account, fetch.token, bundle))];
}

/** Alice writes first, Bob's delivered receipt comes back: a confirmed session both ways. */
async function converse(): Promise<{ alice: Peer; bob: Peer }> {
  const alice = await makePeer(ALICE);
  const bob = await makePeer(BOB);
  await alice.core.sendText(BOB, "first");
  await take(bob, alice, await deliver(alice, bob));
  await bob.core.flush();
  await take(alice, bob, await deliver(bob, alice));
  expect((await alice.store.history(BOB))[0]!.status).toBe("delivered");
  return { alice, bob };
}

describe("a lost session, healed by a retry request", () => {
  it("the receiver asks on a new session, the sender resends once, on a new session", async () => {
    const { alice, bob } = await converse();
    bob.olm.forgetPeer([ALICE, 1]); // Bob loses his session with Alice (a restored backup)
    const { clientId } = await alice.core.sendText(BOB, "did you get this?");
    const lost = await deliver(alice, bob);
    expect(lost.kind).toBe(1); // on the confirmed session, which Bob no longer has
    const failed = await take(bob, alice, lost);
    expect(events(failed)).toContainEqual(
      expect.objectContaining({ type: "DecryptionFailed", sender: ALICE, retryRequested: true }),
    );
    expect(of(failed, "WakeOutbox")).not.toHaveLength(0);
    const placeholder = (await bob.store.history(ALICE)).find((m) => m.status === "undecryptable");
    expect(placeholder!.body).toContain(ASKED_TO_RESEND);
    expect(bob.core.state.pendingAcks).toContain(lost.id); // acknowledged all the same

    // The request names the envelope and goes as a pre-key message (a claimed key).
    const [request] = await bob.store.pending(0, 10);
    expect(decodeContent(request!.content)).toEqual({ t: "retry", ts: lost.ts, device: 1 });
    const asked = await deliver(bob, alice);
    expect(asked.kind).toBe(0);
    const answered = await take(alice, bob, asked);
    expect(of(answered, "WakeOutbox")).not.toHaveLength(0);

    // Alice resends the text: same id, a new outbox id, a new session (pre-key again).
    const resent = await deliver(alice, bob);
    expect(resent.kind).toBe(0);
    const got = await take(bob, alice, resent);
    const messages = events(got).filter((e) => e.type === "Message");
    expect(messages).toEqual([
      expect.objectContaining({ id: clientId, text: "did you get this?", sender: ALICE }),
    ]);
    const bodies = (await bob.store.history(ALICE)).map((m) => m.body);
    expect(bodies).toEqual(["first", placeholder!.body, "did you get this?"]);
    // Alice's original keeps its status; the resend's `sent` did not touch it.
    const mine = (await alice.store.history(BOB)).find((m) => m.clientId === clientId)!;
    expect(mine).toMatchObject({ status: "sent", serverTs: lost.ts });
    expect(await alice.store.resendCount(BOB, clientId)).toBe(1);

    // The healed sessions carry the conversation on, both ways.
    await bob.core.sendText(ALICE, "yes, now I did");
    const reply = await take(alice, bob, await deliver(bob, alice));
    expect(events(reply)).toContainEqual(
      expect.objectContaining({ type: "Message", text: "yes, now I did" }),
    );
  });

  it("asks at most 10 times per sender device; later failures keep a plain placeholder", async () => {
    const { alice, bob } = await converse();
    bob.olm.forgetPeer([ALICE, 1]);
    const flags: boolean[] = [];
    for (let i = 0; i < MAX_REQUESTS_PER_DEVICE + 2; i++) {
      const ct = alice.olm.encrypt([BOB, 1], encodeContent({ t: "typing", state: "started" }));
      const envelope = {
        type: "envelope",
        id: 9000 + i,
        from: ALICE,
        from_device: 1,
        ts: NOW + i, // one placeholder each
        kind: ct.kind,
        body: b64encode(ct.body),
      };
      for (const e of events(await take(bob, alice, envelope)))
        if (e.type === "DecryptionFailed") flags.push(e.retryRequested === true);
    }
    expect(flags).toEqual([...Array<boolean>(MAX_REQUESTS_PER_DEVICE).fill(true), false, false]);
    const requests = (await bob.store.pending(0, 100)).map((i) => decodeContent(i.content));
    expect(requests).toHaveLength(MAX_REQUESTS_PER_DEVICE);
    expect(requests[0]).toEqual({ t: "retry", ts: NOW, device: 1 });
    const placeholders = (await bob.store.history(ALICE)).filter(
      (m) => m.status === "undecryptable",
    );
    expect(placeholders).toHaveLength(MAX_REQUESTS_PER_DEVICE + 2);
    const plain = placeholders.filter((m) => !m.body.includes(ASKED_TO_RESEND));
    expect(plain.map((m) => m.body)).toEqual([
      "A message could not be decrypted.",
      "A message could not be decrypted.",
    ]);
  });

  it("asks nothing for keys that do not verify", async () => {
    const alice = await makePeer(ALICE);
    const bob = await makePeer(BOB);
    await alice.core.sendText(BOB, "hello");
    const env = await deliver(alice, bob);
    const out = await bob.core.receive(env);
    const fetch = of(out, "FetchKeys")[0]!;
    const forged = await bundleOf(alice, false);
    forged.devices[0]!.signature = forged.devices[0]!.signature.replace(/^./, (c) =>
      c === "A" ? "B" : "A",
    );
    const got = await bob.core.keysFetched(fetch.account, fetch.token, forged);
    expect(events(got)).toContainEqual(
      expect.objectContaining({ type: "DecryptionFailed", retryRequested: false }),
    );
    expect(await bob.store.outboxSize()).toBe(0);
  });
});
