import { describe, expect, it } from "vitest";
import { EXPIRED, ttlLeft } from "../../src/core/outbox_ttl";
import type { OutboxItem } from "../../src/core/types";
import { makePeer } from "./helpers";

// A disappearing text that waited in the outbox (core/outbox_ttl.ts, as the SDK's
// tests/unit/client/core/test_outbox ttl cases): the frame carries the time it has left, and
// one whose timer ran out is failed as `expired`, never sent.

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";

const item = (ttl: number | undefined, createdAt: number): OutboxItem => ({
  seq: 0,
  clientId: "c-ttl-1",
  recipient: BOB,
  content: new Uint8Array([1]),
  isText: true,
  createdAt,
  ...(ttl === undefined ? {} : { ttl }),
});

describe("ttlLeft", () => {
  it("is the ttl less the wait, rounded up, never above the ttl nor below 0", () => {
    expect(ttlLeft(item(undefined, 0), 99_000)).toBeUndefined();
    expect(ttlLeft(item(5, 10_000), 10_000)).toBe(5);
    expect(ttlLeft(item(5, 10_000), 12_500)).toBe(3);
    expect(ttlLeft(item(5, 10_000), 14_999)).toBe(1);
    expect(ttlLeft(item(5, 10_000), 15_000)).toBe(0);
    expect(ttlLeft(item(5, 10_000), 60_000)).toBe(0);
    expect(ttlLeft(item(5, 10_000), 1_000)).toBe(5); // the clock went back
  });
});

describe("an expired disappearing text in the outbox", () => {
  it("is failed as expired, with its outbox row gone, and never sent", async () => {
    const alice = await makePeer(ALICE);
    const { clientId } = await alice.core.sendText(BOB, "gone before it left");
    const [queued] = await alice.core.nextOutboxItems();
    expect(queued!.clientId).toBe(clientId);
    const late = { ...queued!, ttl: 5, createdAt: Date.now() - 6_000 };
    const actions = await alice.core.prepare(late);
    expect(actions.some((a) => a.type === "SendFrame" || a.type === "ClaimKeys")).toBe(false);
    const settled = actions.find((a) => a.type === "SendSettled");
    expect(settled).toMatchObject({ clientId, error: "expired" });
    const failed = actions.find((a) => a.type === "EmitEvent");
    expect(failed).toMatchObject({ event: { type: "SendFailedEvent", code: "expired" } });
    expect((failed as { event: { message: string } }).event.message).toBe(EXPIRED);
    expect(await alice.core.nextOutboxItems()).toEqual([]);
  });
});
