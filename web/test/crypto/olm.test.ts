import { beforeAll, describe, expect, it } from "vitest";
import { decodeContent, encodeContent } from "../../src/crypto/content";
import { CryptoError, DecryptError } from "../../src/crypto/errors";
import { NORMAL, OlmMachine, PRE_KEY } from "../../src/crypto/olm";
import { type Libolm, loadOlm } from "../../src/crypto/olm_raw";
import { oneTimeKeyPayload, verifyEd25519 } from "../../src/crypto/signing";
import { hexencode } from "../../src/protocol/codec";

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
