import { describe, expect, it } from "vitest";
import type { Action } from "../../src/core/actions";
import type { Event } from "../../src/core/events";
import { ClientError } from "../../src/core/errors";
import { MAX_EDITS, describeSeconds, textTs, timerNotice } from "../../src/core/rich";
import * as rich from "../../src/core/rich_send";
import type { StoredMessage } from "../../src/core/types";
import { encodeContent } from "../../src/crypto/content";
import { DELETE_WINDOW_MS } from "../../src/crypto/rich";
import type { SendFrame } from "../../src/protocol/frames.gen";
import { defaultHandlers } from "../../src/core/handlers";
import type { Sent as SentCopy } from "../../src/crypto/content";
import { bundleOf, envelopeFor, makePeer, type Peer } from "./helpers";

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";

const of = <T extends Action["type"]>(actions: Action[], type: T) =>
  actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
const events = (actions: Action[]): Event[] => of(actions, "EmitEvent").map((a) => a.event);

/** Every queued item of `from`, sent, acknowledged by the "server", delivered to `to`. */
async function deliver(from: Peer, to: Peer, ts?: number): Promise<Event[]> {
  const out: Event[] = [];
  for (const item of await from.core.nextOutboxItems()) {
    let actions = await from.core.prepare(item);
    // One claim per account: the peer's, and the listing of one's own devices (sent copies).
    for (const claim of of(actions, "ClaimKeys")) {
      const bundle = claim.listing ? await bundleOf(from, false) : await bundleOf(to, true);
      actions = [...actions, ...(await from.core.keysClaimed(claim, bundle))];
    }
    const frame = of(actions, "SendFrame")[0]!.frame as SendFrame;
    const env = { ...envelopeFor(frame, from.accountId, to.accountId), ...(ts && { ts }) };
    await from.core.receive({ type: "sent", id: frame.id, ts: env.ts });
    let got = await to.core.receive(env);
    const fetch = of(got, "FetchKeys")[0];
    if (fetch)
      got = got.concat(
        await to.core.keysFetched(fetch.account, fetch.token, await bundleOf(from, false)),
      );
    out.push(...events(got));
  }
  return out;
}

async function row(peer: Peer, with_: string, clientId: string): Promise<StoredMessage> {
  return (await peer.store.history(with_)).find((m) => m.clientId === clientId)!;
}

async function pair(): Promise<[Peer, Peer]> {
  return [await makePeer(ALICE), await makePeer(BOB)];
}

describe("rich messages between two browser cores", () => {
  it("a reply, reactions, an edit and a delete apply on both sides alike", async () => {
    const [alice, bob] = await pair();
    const first = await rich.sendText(alice.core.state, BOB, "lunch?");
    await deliver(alice, bob);
    const lunch = await row(bob, ALICE, first.clientId);
    expect(lunch).toMatchObject({ body: "lunch?", outgoing: false, status: "received" });

    const reply = await rich.sendText(bob.core.state, ALICE, "yes", {
      reply: rich.quoteOf(bob.core.state, lunch),
    });
    await deliver(bob, alice);
    expect((await row(alice, BOB, reply.clientId)).extra?.reply).toEqual({
      id: first.clientId,
      author: ALICE,
      body: "lunch?",
    });

    // Bob reacts; the change is his own at once and Alice's on receipt.
    const reacted = await rich.react(bob.core.state, ALICE, lunch, "👍");
    expect(reacted.event).toMatchObject({ type: "ReactionChanged", reactor: BOB, emoji: "👍" });
    expect((await row(bob, ALICE, first.clientId)).extra?.reactions?.[BOB]?.emoji).toBe("👍");
    expect(await deliver(bob, alice)).toContainEqual(
      expect.objectContaining({ type: "ReactionChanged", id: first.clientId, emoji: "👍" }),
    );
    expect((await row(alice, BOB, first.clientId)).extra?.reactions?.[BOB]?.emoji).toBe("👍");
    // Removing it ("") is stored as a removal, not shown.
    await rich.react(bob.core.state, ALICE, await row(bob, ALICE, first.clientId), "");
    await deliver(bob, alice);
    expect((await row(alice, BOB, first.clientId)).extra?.reactions?.[BOB]?.emoji).toBe("");

    // Alice edits her message; Bob cannot edit hers (the core refuses before sending).
    const own = await row(alice, BOB, first.clientId);
    await rich.edit(alice.core.state, BOB, own, "lunch at one?");
    expect(await deliver(alice, bob)).toContainEqual(
      expect.objectContaining({ type: "MessageEdited", text: "lunch at one?" }),
    );
    const edited = await row(bob, ALICE, first.clientId);
    expect(edited).toMatchObject({ body: "lunch at one?", edited: true });
    expect(edited.extra?.edits).toEqual([[lunch.ts, "lunch?"]]);
    await expect(rich.edit(bob.core.state, ALICE, edited, "mine now")).rejects.toThrow(ClientError);

    // Delete for everyone: the body and reactions go, a marker stays.
    await rich.deleteForEveryone(alice.core.state, BOB, await row(alice, BOB, first.clientId));
    await deliver(alice, bob);
    const gone = await row(bob, ALICE, first.clientId);
    expect(gone).toMatchObject({ body: "", deleted: true, edited: false });
    expect(gone.extra).toBeUndefined();
  });

  it("ignores an edit from someone else, or one stored after the window", async () => {
    const [alice, bob] = await pair();
    const sent = await rich.sendText(alice.core.state, BOB, "original");
    await deliver(alice, bob);
    const target = await row(bob, ALICE, sent.clientId);
    // Bob forges an edit of Alice's message: Alice's core ignores it (he is not the author).
    await bob.core.state.queueContent(
      ALICE,
      encodeContent({ t: "edit", id: sent.clientId, body: "forged", ts: Date.now() }),
    );
    expect((await deliver(bob, alice)).filter((e) => e.type === "MessageEdited")).toEqual([]);
    expect((await row(alice, BOB, sent.clientId)).body).toBe("original");
    // Alice's edit, stored by the server past the 48 h window: ignored by Bob.
    await alice.core.state.queueContent(
      BOB,
      encodeContent({ t: "edit", id: sent.clientId, body: "too late", ts: Date.now() }),
    );
    await deliver(alice, bob, target.serverTs + DELETE_WINDOW_MS + 1);
    expect((await row(bob, ALICE, sent.clientId)).body).toBe("original");
  });

  it("a timer makes the next texts disappear from IndexedDB on both sides", async () => {
    const [alice, bob] = await pair();
    const set = await rich.setTimer(alice.core.state, BOB, 30);
    expect(set.event).toMatchObject({ type: "TimerChanged", seconds: 30, by: ALICE });
    expect(await deliver(alice, bob)).toContainEqual(
      expect.objectContaining({ type: "TimerChanged", seconds: 30, by: ALICE }),
    );
    expect((await bob.store.timer(ALICE))?.seconds).toBe(30);
    expect((await bob.store.history(ALICE)).at(-1)).toMatchObject({
      status: "notice",
      body: "1b4e28ba set disappearing messages to 30 seconds",
    });
    const text = await rich.sendText(bob.core.state, ALICE, "poof");
    const [item] = await bob.core.nextOutboxItems();
    expect(item!.ttl).toBe(30); // the server drops it undelivered at expiry too
    await deliver(bob, alice);
    const mine = await row(bob, ALICE, text.clientId);
    const theirs = await row(alice, BOB, text.clientId);
    expect(theirs.expiresAt).toBe(mine.expiresAt);
    expect(mine.expiresAt! - mine.ts).toBe(30_000);
    const before = (await alice.store.history(BOB)).length;
    const clock = alice.core.state.clock;
    Object.defineProperty(alice.core.state, "clock", { value: () => mine.expiresAt! });
    const expired = await rich.expireNow(alice.core.state);
    Object.defineProperty(alice.core.state, "clock", { value: clock });
    expect(expired).toEqual([
      { type: "MessageDeleted", peer: BOB, id: text.clientId, author: BOB, expired: true },
    ]);
    expect((await alice.store.history(BOB)).length).toBe(before - 1);
    expect(await alice.store.message(BOB, false, text.clientId)).toBeNull();
  });

  it("bounds edits and timers, and words the rules as the SDK does", async () => {
    const [alice] = await pair();
    await expect(rich.setTimer(alice.core.state, BOB, 31_536_001)).rejects.toThrow(
      "a disappearing timer is 0 (off) up to 365 days",
    );
    await expect(rich.sendText(alice.core.state, BOB, "  ")).rejects.toThrow(ClientError);
    const sent = await rich.sendText(alice.core.state, BOB, "v0");
    for (let i = 1; i <= MAX_EDITS; i++)
      await rich.edit(alice.core.state, BOB, await row(alice, BOB, sent.clientId), `v${i}`);
    await expect(
      rich.edit(alice.core.state, BOB, await row(alice, BOB, sent.clientId), "one more"),
    ).rejects.toThrow(`edited ${MAX_EDITS} times already`);
    expect(describeSeconds(604800)).toBe("1 week");
    expect(describeSeconds(90)).toBe("90 seconds");
    expect(timerNotice("You", 0)).toBe("You turned off disappearing messages");
    const text = { t: "text" as const, id: "x", body: "", ts: 10 ** 13 };
    expect(textTs(text, 1000)).toBe(1000); // a day past the server's time: shown at its time
  });

  it("applies one's own action copied from another of one's devices", async () => {
    const [alice] = await pair();
    const sent = await rich.sendText(alice.core.state, BOB, "from here");
    await alice.core.receive({ type: "sent", id: sent.clientId, ts: Date.now() });
    const handlers = defaultHandlers();
    const copy: SentCopy = {
      t: "sent",
      to: BOB,
      content: { t: "edit", id: sent.clientId, body: "edited on my phone", ts: Date.now() },
    };
    const env = { id: 77, ts: Date.now(), sender: ALICE, device: 2 };
    const writes = {};
    const handler = handlers.forContent(copy);
    await handler.persist(alice.core.state, env, copy, writes);
    await alice.store.commit(writes);
    await handler.react(alice.core.state, env, copy, false);
    expect(await row(alice, BOB, sent.clientId)).toMatchObject({
      body: "edited on my phone",
      edited: true,
    });
    expect(alice.core.state.take()).toContainEqual(
      expect.objectContaining({ event: expect.objectContaining({ type: "MessageEdited" }) }),
    );
    // From anyone else a "sent" copy means nothing.
    const forged = { ...env, sender: BOB };
    const copy2: SentCopy = {
      ...copy,
      content: { ...copy.content, body: "forged" } as SentCopy["content"],
    };
    const more = {};
    await handler.persist(alice.core.state, forged, copy2, more);
    expect(more).toEqual({});
  });
});
