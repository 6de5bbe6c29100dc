import { describe, expect, it } from "vitest";
import { ClientError } from "../../src/core/errors";
import type { Event } from "../../src/core/events";
import * as rich from "../../src/core/rich_send";
import type { StoredMessage } from "../../src/core/types";
import { encodeContent } from "../../src/crypto/content";
import type { Attachment } from "../../src/crypto/rich";
import type { SendFrame } from "../../src/protocol/frames.gen";
import { IdbStore } from "../../src/store/idb";
import { type Peer, bundleOf } from "./helpers";
import { groupPeer, of, serverGroup } from "./group_helpers";

// Rich messages and attachment pointers inside a group's Megolm session (core/rich*.ts with
// core/group_receive.ts), between three real browser cores.

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";
const CAROL = "c0c0c0c0-0000-4000-8000-00000000ca01";
const GID = "9a9a9a9a-1111-4222-8333-444444444444";
const PEER = `g:${GID}`;

async function trio(): Promise<Peer[]> {
  const peers = [await groupPeer(ALICE), await groupPeer(BOB), await groupPeer(CAROL)];
  const group = await serverGroup(GID, peers[0]!, [BOB, CAROL]);
  for (const p of peers) await p.core.groupFetched(group);
  return peers;
}

let ids = 5000;
/** Every queued item of `from` sent (claims answered with real keys), acknowledged, and
 * delivered as the server would to each other member; the events each one emitted. */
async function pass(from: Peer, others: Peer[], ts?: number): Promise<Map<string, Event[]>> {
  const out = new Map<string, Event[]>(others.map((p) => [p.accountId, []]));
  for (const item of await from.core.nextOutboxItems()) {
    let actions = await from.core.prepare(item);
    for (let claim = of(actions, "ClaimKeys")[0]; claim; claim = of(actions, "ClaimKeys")[0]) {
      const peer = others.find((p) => p.accountId === claim!.account)!;
      actions = await from.core.keysClaimed(claim, await bundleOf(peer, true));
    }
    const frames = of(actions, "SendFrame").map((a) => a.frame as SendFrame);
    const at = ts ?? Date.now();
    for (const f of frames) await from.core.receive({ type: "sent", id: f.id, ts: at });
    for (const to of others) {
      for (const frame of frames) {
        const dest = frame.destinations.find((d) => d.account === to.accountId);
        if (!dest) continue;
        const own = dest.devices[0]!;
        const body = own.body ?? frame.shared!.body;
        const kind = own.body ? own.kind : frame.shared!.kind;
        const env = { type: "envelope", id: ids++, from: from.accountId, from_device: 1, ts: at };
        let got = await to.core.receive({ ...env, kind, body });
        const fetch = of(got, "FetchKeys")[0];
        if (fetch)
          got = got.concat(
            await to.core.keysFetched(fetch.account, fetch.token, await bundleOf(from, false)),
          );
        out.get(to.accountId)!.push(...of(got, "EmitEvent").map((a) => a.event));
      }
    }
  }
  return out;
}

async function row(peer: Peer, clientId: string): Promise<StoredMessage> {
  return (await peer.store.history(PEER)).find((m) => m.clientId === clientId)!;
}

const pointer: Attachment = {
  id: "AAAAAAAAAAAAAAAAAAAAAA",
  key: new Uint8Array(64).fill(7),
  digest: new Uint8Array(32).fill(9),
  size: 1234,
  contentType: "image/jpeg",
  name: "cliff.jpg",
  width: 40,
  height: 30,
  thumbnail: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]),
  blurhash: "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
};

describe("rich messages in a group", () => {
  it("a photo pointer, a reply, per-member reactions, an edit and a delete reach every member", async () => {
    const [alice, bob, carol] = await trio();
    // A photo with a caption: its pointer (and key) inside the Megolm text.
    const photo = await rich.sendText(alice!.core.state, PEER, "the cliff", {
      attachments: [pointer],
    });
    await pass(alice!, [bob!, carol!]);
    const got = await row(bob!, photo.clientId);
    expect(got).toMatchObject({ body: "the cliff", author: ALICE, outgoing: false });
    expect(got.extra?.attachments?.[0]).toEqual(pointer);

    // Bob replies quoting it; the quote names Alice as its author.
    const reply = await rich.sendText(bob!.core.state, PEER, "nice", {
      reply: rich.quoteOf(bob!.core.state, got),
    });
    await pass(bob!, [alice!, carol!]);
    for (const p of [alice!, carol!])
      expect((await row(p, reply.clientId)).extra?.reply).toEqual({
        id: photo.clientId,
        author: ALICE,
        body: "the cliff",
      });
    // Alice's reply to Bob's reply quotes Bob (a group row's author, not the group).
    const quote = rich.quoteOf(alice!.core.state, await row(alice!, reply.clientId));
    expect(quote.author).toBe(BOB);

    // Two members react: one reaction each, kept by reactor.
    const reacted = await rich.react(bob!.core.state, PEER, got, "👍");
    expect(reacted.event).toMatchObject({ type: "ReactionChanged", peer: PEER, reactor: BOB });
    const told = await pass(bob!, [alice!, carol!]);
    expect(told.get(ALICE)).toContainEqual(
      expect.objectContaining({ type: "ReactionChanged", peer: PEER, id: photo.clientId }),
    );
    await rich.react(carol!.core.state, PEER, await row(carol!, photo.clientId), "❤️");
    await pass(carol!, [alice!, bob!]);
    const reactions = (await row(alice!, photo.clientId)).extra?.reactions ?? {};
    expect(Object.fromEntries(Object.entries(reactions).map(([k, v]) => [k, v.emoji]))).toEqual({
      [BOB]: "👍",
      [CAROL]: "❤️",
    });
    expect((await row(bob!, photo.clientId)).extra?.reactions?.[CAROL]?.emoji).toBe("❤️");

    // The author edits; every member shows the new text, the old one kept.
    await rich.edit(alice!.core.state, PEER, await row(alice!, photo.clientId), "the north cliff");
    const edits = await pass(alice!, [bob!, carol!]);
    expect(edits.get(CAROL)).toContainEqual(
      expect.objectContaining({ type: "MessageEdited", peer: PEER, text: "the north cliff" }),
    );
    const edited = await row(carol!, photo.clientId);
    expect(edited).toMatchObject({ body: "the north cliff", edited: true });
    expect(edited.extra?.edits).toEqual([[got.ts, "the cliff"]]);
    expect(edited.extra?.attachments?.[0]?.id).toBe(pointer.id); // the photo stays

    // Someone else's message: the core refuses before sending.
    await expect(rich.edit(bob!.core.state, PEER, edited, "mine")).rejects.toMatchObject({
      code: "not_author",
    });
    await expect(rich.deleteForEveryone(carol!.core.state, PEER, edited)).rejects.toThrow(
      ClientError,
    );

    // Delete for everyone: body, photo and reactions go; the marker stays, on every member.
    await rich.deleteForEveryone(alice!.core.state, PEER, await row(alice!, photo.clientId));
    await pass(alice!, [bob!, carol!]);
    for (const p of [alice!, bob!, carol!]) {
      const gone = await row(p, photo.clientId);
      expect(gone).toMatchObject({ body: "", deleted: true });
      expect(gone.extra).toBeUndefined();
    }
  });

  it("an edit or delete of another member's message is ignored, as porch.client.core.rich does", async () => {
    const [alice, bob, carol] = await trio();
    const sent = await rich.sendText(alice!.core.state, PEER, "original");
    await pass(alice!, [bob!, carol!]);
    // Bob forges an edit and a delete of Alice's message inside the group session.
    for (const forged of [
      { t: "edit", id: sent.clientId, body: "forged", ts: Date.now(), group: GID },
      { t: "delete", id: sent.clientId, ts: Date.now(), group: GID },
    ] as const)
      await bob!.core.state.queueContent(PEER, encodeContent(forged));
    const told = await pass(bob!, [alice!, carol!]);
    for (const events of told.values())
      expect(
        events.filter((e) => e.type === "MessageEdited" || e.type === "MessageDeleted"),
      ).toEqual([]);
    for (const p of [alice!, carol!]) {
      const kept = await row(p, sent.clientId);
      expect([kept.body, kept.deleted ?? false, kept.edited ?? false]).toEqual([
        "original",
        false,
        false,
      ]);
    }

    // The author's own edit, stored past the 48 h window: ignored too.
    const late = (await row(carol!, sent.clientId)).serverTs + 48 * 3600 * 1000 + 1;
    await alice!.core.state.queueContent(
      PEER,
      encodeContent({ t: "edit", id: sent.clientId, body: "too late", ts: late, group: GID }),
    );
    await pass(alice!, [bob!, carol!], late);
    expect((await row(carol!, sent.clientId)).body).toBe("original");
  });

  it("rows survive a reopen of the store; a group timer is no content; media counts devices", async () => {
    const [alice, bob, carol] = await trio();
    const sent = await rich.sendText(alice!.core.state, PEER, "keep me", {
      attachments: [pointer],
    });
    await pass(alice!, [bob!, carol!]);
    await rich.react(bob!.core.state, PEER, await row(bob!, sent.clientId), "😂");
    await pass(bob!, [alice!, carol!]);
    // A reload: the same IndexedDB database opened again reads the sealed extras back.
    const name = (alice!.store as unknown as { db: { name: string } }).db.name;
    const again = await IdbStore.open(name);
    const kept = (await again.history(PEER)).find((m) => m.clientId === sent.clientId)!;
    expect(kept.extra?.reactions?.[BOB]?.emoji).toBe("😂");
    expect(kept.extra?.attachments?.[0]?.key).toEqual(pointer.key);

    await expect(rich.setTimer(alice!.core.state, PEER, 30)).rejects.toThrow(
      "a group's disappearing timer is part of its settings",
    );
    // Every other member's devices (one each, known since the key share); none unknown.
    expect(await rich.mediaRecipients(alice!.core.state, PEER)).toBe(2);
    const dora = await groupPeer(ALICE);
    await dora.core.groupFetched(await serverGroup(GID, dora, [BOB]));
    expect(await rich.mediaRecipients(dora.core.state, PEER)).toBeNull(); // Bob's not known
  });
});
