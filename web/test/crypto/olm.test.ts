import { beforeAll, describe, expect, it } from "vitest";
import { decodeContent, encodeContent } from "../../src/crypto/content";
import { CryptoError, DecryptError } from "../../src/crypto/errors";
import { decodeGroupMessage, encodeGroupMessage } from "../../src/crypto/group_message";
import {
  InboundGroupSession,
  OutboundGroupSession,
  groupKeyPayload,
} from "../../src/crypto/megolm";
import { NORMAL, OlmMachine, PRE_KEY } from "../../src/crypto/olm";
import { type Libolm, loadOlm } from "../../src/crypto/olm_raw";
import { oneTimeKeyPayload, verifyEd25519 } from "../../src/crypto/signing";
import { hexdecode, hexencode } from "../../src/protocol/codec";
import { CRYPTO } from "../vectors";

const ALICE = ["1b4e28ba-2fa1-11d2-883f-0016d3cca427", 1] as const;
const BOB = ["b7f3c2a0-0000-4000-8000-00000000beef", 1] as const;
const KEY = new Uint8Array(32).fill(7);
let lib: Libolm;

beforeAll(async () => {
  lib = await loadOlm();
});

/** A padded content: bytes with a 0x80 marker and NULs, which libolm's string API would mangle. */
const padded = (body: string) => encodeContent({ t: "text", id: "m-1", body, ts: 1 });

function pair(): { alice: OlmMachine; bob: OlmMachine } {
  const alice = OlmMachine.create(lib, KEY);
  const bob = OlmMachine.create(lib, KEY);
  const [otk] = bob.generateOneTimeKeys(1);
  alice.createOutboundSession(BOB, bob.curve25519, otk!.curve25519);
  return { alice, bob };
}

describe("Olm on libolm, byte-exact", () => {
  it("signs one-time keys with the porch/otk/v1 payload, verifiable by WebCrypto", async () => {
    const machine = OlmMachine.create(lib, KEY);
    const keys = machine.generateOneTimeKeys(3);
    expect(keys).toHaveLength(3);
    for (const key of [...keys, machine.generateFallbackKey()]) {
      const payload = oneTimeKeyPayload(key.keyId, key.curve25519, key.fallback);
      await verifyEd25519(machine.ed25519, payload, key.signature);
    }
    expect(machine.generateOneTimeKeys(1)[0]!.keyId).not.toBe(keys[0]!.keyId);
  });

  it("round-trips padded contents both ways and converges on one session", () => {
    const { alice, bob } = pair();
    const first = alice.encrypt(BOB, padded("hello"));
    expect(first.kind).toBe(PRE_KEY);
    const plain = bob.decrypt(ALICE, alice.curve25519, first);
    expect(hexencode(plain)).toBe(hexencode(padded("hello")));
    expect(decodeContent(plain)).toMatchObject({ body: "hello" });
    const reply = bob.encrypt(ALICE, padded("hi \u{1f44b}"));
    expect(decodeContent(alice.decrypt(BOB, bob.curve25519, reply))).toMatchObject({
      body: "hi \u{1f44b}",
    });
    expect(alice.encrypt(BOB, padded("again")).kind).toBe(NORMAL);
  });

  it("changes nothing on a failed decryption and uses a one-time key only once", () => {
    const { alice, bob } = pair();
    const message = alice.encrypt(BOB, padded("x"));
    const tampered = { kind: message.kind, body: message.body.slice() };
    tampered.body[tampered.body.length - 1]! ^= 1;
    expect(() => bob.decrypt(ALICE, alice.curve25519, tampered)).toThrow(DecryptError);
    expect(bob.hasSession(ALICE)).toBe(false);
    expect(decodeContent(bob.decrypt(ALICE, alice.curve25519, message))).toMatchObject({
      body: "x",
    });
    const eve = OlmMachine.create(lib, KEY);
    expect(() =>
      eve.decrypt(ALICE, alice.curve25519, { kind: NORMAL, body: message.body }),
    ).toThrow(/no Olm session/);
    expect(() => bob.decrypt(ALICE, alice.curve25519, { kind: 2, body: message.body })).toThrow(
      /type 2/,
    );
  });

  it("survives a pickle round trip and refuses a wrong pickle key", () => {
    const { alice, bob } = pair();
    bob.decrypt(ALICE, alice.curve25519, alice.encrypt(BOB, padded("1")));
    const restored = OlmMachine.fromPickle(lib, bob.pickleAccount(), KEY);
    restored.loadSessions(ALICE, bob.pickleSessions(ALICE));
    expect(restored.curve25519).toBe(bob.curve25519);
    const next = alice.encrypt(BOB, padded("2"));
    expect(decodeContent(restored.decrypt(ALICE, alice.curve25519, next))).toMatchObject({
      body: "2",
    });
    expect(() => OlmMachine.fromPickle(lib, bob.pickleAccount(), new Uint8Array(32))).toThrow(
      CryptoError,
    );
    expect(() => OlmMachine.create(lib, new Uint8Array(16))).toThrow(/32 bytes/);
    expect(() => restored.loadSessions(ALICE, "{}")).toThrow(/list of strings/);
  });
});

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

  it.each(CRYPTO.group_message!)("group_message vector for $group", (v) => {
    const message = { groupId: v.group, sessionId: v.session, ciphertext: hexdecode(v.megolm_hex) };
    expect(hexencode(encodeGroupMessage(message))).toBe(v.body_hex);
    expect(decodeGroupMessage(hexdecode(v.body_hex))).toEqual(message);
  });
});
