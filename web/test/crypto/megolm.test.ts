import { beforeAll, describe, expect, it } from "vitest";
import { encodeContent } from "../../src/crypto/content";
import {
  InboundGroupSession,
  OutboundGroupSession,
  groupKeyPayload,
} from "../../src/crypto/megolm";
import { OlmMachine } from "../../src/crypto/olm";
import { type Libolm, loadOlm } from "../../src/crypto/olm_raw";
import { hexencode } from "../../src/protocol/codec";

const KEY = new Uint8Array(32).fill(7);
let lib: Libolm;

beforeAll(async () => {
  lib = await loadOlm();
});

const padded = (body: string) => encodeContent({ t: "text", id: "m-1", body, ts: 1 });

describe("Megolm on libolm", () => {
  async function session() {
    const sender = OlmMachine.create(lib, KEY);
    const outbound = OutboundGroupSession.create(lib, KEY, 1_700_000_000_000);
    const sig = sender.sign(groupKeyPayload("g-1", outbound.sessionId));
    const args = {
      groupId: "g-1",
      sessionId: outbound.sessionId,
      sessionKey: outbound.sessionKey(),
      signature: sig,
      senderEd25519: sender.ed25519,
      pickleKey: KEY,
    };
    return { outbound, inbound: await InboundGroupSession.fromGroupKey(lib, args), args };
  }

  it("decrypts, flags a retransmission and refuses a replay at a used index", async () => {
    const { outbound, inbound } = await session();
    const first = outbound.encrypt(padded("one"));
    expect(inbound.decrypt(first)).toMatchObject({ messageIndex: 0, duplicate: false });
    expect(hexencode(inbound.decrypt(first).plaintext)).toBe(hexencode(padded("one")));
    expect(inbound.decrypt(first).duplicate).toBe(true);
    // Same index, other ciphertext: restore the outbound session from before it sent.
    const { outbound: other, inbound: fresh } = await session();
    const pickled = await other.pickle();
    fresh.decrypt(other.encrypt(padded("a")));
    const rewound = await OutboundGroupSession.fromPickle(lib, pickled, KEY);
    expect(() => fresh.decrypt(rewound.encrypt(padded("b")))).toThrow(
      expect.objectContaining({ code: "replayed" }),
    );
  });

  it("refuses messages before the shared index, tampered ones and foreign keys", async () => {
    const { outbound, args } = await session();
    const early = outbound.encrypt(padded("early"));
    const late = await InboundGroupSession.fromGroupKey(lib, {
      ...args,
      sessionKey: outbound.sessionKey(),
    });
    expect(late.firstKnownIndex).toBe(1);
    expect(() => late.decrypt(early)).toThrow(expect.objectContaining({ code: "unknown_index" }));
    const message = outbound.encrypt(padded("x"));
    message[10]! ^= 1;
    expect(() => late.decrypt(message)).toThrow(
      expect.objectContaining({ code: "decrypt_failed" }),
    );
    await expect(
      InboundGroupSession.fromGroupKey(lib, { ...args, groupId: "g-2" }),
    ).rejects.toThrow(/does not verify/);
  });

  it("seals pickles with the replay record", async () => {
    const { outbound, inbound } = await session();
    const message = outbound.encrypt(padded("kept"));
    inbound.decrypt(message);
    const restored = await InboundGroupSession.fromPickle(lib, await inbound.pickle(), KEY);
    expect(restored.decrypt(message).duplicate).toBe(true);
    await expect(
      InboundGroupSession.fromPickle(lib, await inbound.pickle(), new Uint8Array(32)),
    ).rejects.toThrow(/does not open/);
    await expect(OutboundGroupSession.fromPickle(lib, await inbound.pickle(), KEY)).rejects.toThrow(
      /does not open/,
    );
  });
});
