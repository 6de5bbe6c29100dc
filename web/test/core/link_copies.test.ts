import { describe, expect, it } from "vitest";
import type { Action } from "../../src/core/actions";
import { ServerError } from "../../src/core/errors";
import type { Event } from "../../src/core/events";
import { copied } from "../../src/core/link_copies";
import { decodeContent, encodeContent } from "../../src/crypto/content";
import type { SendFrame } from "../../src/protocol/frames.gen";
import { accountBundle, envelopeTo, makeDevice, type Device } from "./helpers";

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";

const of = <T extends Action["type"]>(actions: Action[], type: T) =>
  actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
const events = (actions: Action[]): Event[] => of(actions, "EmitEvent").map((a) => a.event);

/** Alice's terminal (device 1), her browser (device 2, the same master key) and Bob. */
async function setUp(): Promise<{ term: Device; web: Device; bob: Device }> {
  const term = await makeDevice(ALICE, 1);
  const web = await makeDevice(ALICE, 2, term.master);
  return { term, web, bob: await makeDevice(BOB, 1) };
}

/** A device receives an envelope, fetching the sender account's keys when asked. */
async function receive(at: Device, envelope: object, sender: Device[]): Promise<Action[]> {
  const out = await at.core.receive(envelope as Record<string, unknown>);
  const fetch = of(out, "FetchKeys")[0];
  if (!fetch) return out;
  const bundle = await accountBundle(sender, null);
  return [...out, ...(await at.core.keysFetched(fetch.account, fetch.token, bundle))];
}

describe("a note to self", () => {
  it("on a one-device account is done at once: nothing leaves, nothing fails", async () => {
    const web = await makeDevice(ALICE, 2);
    await web.core.sendText(ALICE, "buy milk");
    const [item] = await web.core.nextOutboxItems();
    const [claim] = of(await web.core.prepare(item!), "ClaimKeys");
    expect([claim!.account, claim!.listing]).toEqual([ALICE, true]);
    const done = await web.core.keysClaimed(claim!, await accountBundle([web], null));
    expect(of(done, "SendFrame")).toEqual([]);
    expect(of(done, "SendSettled").map((s) => s.error)).toEqual([null]);
    expect(await web.store.history(ALICE)).toEqual([
      expect.objectContaining({ body: "buy milk", outgoing: true, status: "sent" }),
    ]);
    expect(await web.core.nextOutboxItems()).toEqual([]);
  });

  it("reaches one's other devices as a sent copy that shows as outgoing there", async () => {
    const { term, web } = await setUp();
    await web.core.sendText(ALICE, "buy milk");
    const [item] = await web.core.nextOutboxItems();
    const [claim] = of(await web.core.prepare(item!), "ClaimKeys");
    const listed = await web.core.keysClaimed(claim!, await accountBundle([term, web], null));
    const [own] = of(listed, "ClaimKeys");
    const done = await web.core.keysClaimed(own!, await accountBundle([term, web], [1]));
    const frame = of(done, "SendFrame")[0]!.frame as SendFrame;
    expect(frame.destinations.map((d) => [d.account, d.devices.map((m) => m.device)])).toEqual([
      [ALICE, [1]],
    ]);
    const got = await receive(term, envelopeTo(frame, web, ALICE, 1), [term, web]);
    expect(events(got)).toContainEqual(
      expect.objectContaining({ type: "Message", text: "buy milk", outgoing: true, to: ALICE }),
    );
  });
});

describe("sent copies for one's own other devices (spec D)", () => {
  it("a text goes to the recipient and, as a sent copy, to the account's other device", async () => {
    const { term, web, bob } = await setUp();
    await web.core.sendText(BOB, "from the browser");
    const [item] = await web.core.nextOutboxItems();
    const claims = of(await web.core.prepare(item!), "ClaimKeys");
    expect(claims.map((c) => [c.account, c.devices, c.listing ?? false])).toEqual([
      [BOB, null, false],
      [ALICE, null, true], // one's own devices are listed first: no one-time key is taken
    ]);
    expect(await web.core.keysClaimed(claims[0]!, await accountBundle([bob], [1]))).toEqual([]);
    const listed = await web.core.keysClaimed(claims[1]!, await accountBundle([term, web], null));
    const [own] = of(listed, "ClaimKeys");
    expect([own!.account, own!.devices]).toEqual([ALICE, [1]]); // never this device
    const done = await web.core.keysClaimed(own!, await accountBundle([term, web], [1]));
    const frame = of(done, "SendFrame")[0]!.frame as SendFrame;
    expect(frame.destinations.map((d) => [d.account, d.devices.map((m) => m.device)])).toEqual([
      [BOB, [1]],
      [ALICE, [1]],
    ]);

    // The terminal stores it as its own outgoing message in the conversation with Bob.
    const got = await receive(term, envelopeTo(frame, web, ALICE, 1), [term, web]);
    expect(events(got)).toContainEqual(
      expect.objectContaining({
        type: "Message",
        text: "from the browser",
        outgoing: true,
        to: BOB,
      }),
    );
    expect(await term.store.history(BOB)).toEqual([
      expect.objectContaining({ body: "from the browser", outgoing: true, status: "sent" }),
    ]);
    expect(term.core.state.pendingReceipts.size).toBe(0); // no delivered receipt to oneself
    // Bob gets the text itself from Alice's device 2.
    const atBob = await receive(bob, envelopeTo(frame, web, BOB, 1), [term, web]);
    expect(events(atBob)).toContainEqual(
      expect.objectContaining({ type: "Message", text: "from the browser", outgoing: false }),
    );

    // A read receipt is copied too (read-state sync), with the sessions there are: no claim.
    await term.store.commit({
      messages: [
        {
          peer: BOB,
          clientId: "m1",
          outgoing: false,
          device: 1,
          ts: 1,
          body: "hi",
          status: "received",
          serverTs: 1,
          unread: true,
        },
      ],
    });
    await web.core.markRead(BOB, ["m1"]);
    const [receipt] = await web.core.nextOutboxItems();
    const readFrame = of(await web.core.prepare(receipt!), "SendFrame")[0]!.frame as SendFrame;
    expect(readFrame.destinations.map((d) => d.account)).toEqual([BOB, ALICE]);
    const synced = await receive(term, envelopeTo(readFrame, web, ALICE, 1), [term, web]);
    expect(events(synced)).toContainEqual({ type: "ReadElsewhere", peer: BOB, ids: ["m1"] });
    expect((await term.store.history(BOB)).find((m) => m.clientId === "m1")).toMatchObject({
      status: "read",
      unread: false,
    });
  });

  it("the message goes without its copy when one's own keys cannot be had", async () => {
    const { web, bob } = await setUp();
    await web.core.sendText(BOB, "still goes");
    const [item] = await web.core.nextOutboxItems();
    const [toBob, listing] = of(await web.core.prepare(item!), "ClaimKeys");
    await web.core.keysClaimed(toBob!, await accountBundle([bob], [1]));
    const out = await web.core.keysClaimFailed(
      listing!,
      new ServerError("unavailable", "try later", 503),
    );
    const frame = of(out, "SendFrame")[0]!.frame as SendFrame;
    expect(frame.destinations.map((d) => d.account)).toEqual([BOB]);
  });

  it("copies what the user wrote and read receipts, never typing or delivered receipts", () => {
    const text = { t: "text", id: "x1", body: "hi", ts: 5 } as const;
    expect(copied(encodeContent(text))).toEqual(text);
    const read = { t: "receipt", kind: "read", ids: ["x1"] } as const;
    expect(copied(encodeContent(read))).toEqual(read);
    expect(copied(encodeContent({ t: "receipt", kind: "delivered", ids: ["x1"] }))).toBeNull();
    expect(copied(encodeContent({ t: "typing", state: "started" }))).toBeNull();
    expect(copied(encodeContent({ t: "retry", ts: 1, device: 1 }))).toBeNull();
    expect(copied(Uint8Array.of(1, 2, 3))).toBeNull();
  });

  it("a copied rich action wraps into a sent content that decodes to the same action", () => {
    const reaction = { t: "reaction", id: "x1", author: BOB, emoji: "👍", ts: 7 } as const;
    const inner = copied(encodeContent(reaction))!;
    expect(inner).toEqual(reaction);
    const wrapped = decodeContent(encodeContent({ t: "sent", to: BOB, content: inner }));
    expect(wrapped).toEqual({ t: "sent", to: BOB, content: reaction });
  });
});
