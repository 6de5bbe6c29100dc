import { describe, expect, it } from "vitest";
import type { Action, ClaimKeys } from "../../src/core/actions";
import { IdentityError } from "../../src/core/errors";
import { contactIdentity, digitLines, parseScanned } from "../../src/core/identity";
import type { Contact } from "../../src/core/types";
import { SEND_PAUSED } from "../../src/core/outbox_paused";
import { acceptIdentity, markVerified, verification } from "../../src/core/verified";
import { MasterKey } from "../../src/crypto/signing";
import { hexdecode, hexencode } from "../../src/protocol/codec";
import { CRYPTO } from "../vectors";
import { bundleOf, makePeer } from "./helpers";

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";

function contact(masterKey: string | null, verifiedKey?: string | null): Contact {
  const row: Contact = {
    accountId: BOB,
    label: "@bob",
    masterKey,
    deviceListVersion: null,
    deviceIds: [],
  };
  return verifiedKey === undefined ? row : { ...row, verifiedKey };
}

describe("verification (keyed on the verified master key)", () => {
  it("is unverified without a verified key, a row that predates the field included", () => {
    expect(verification(null)).toBe("unverified");
    expect(verification(contact("K1"))).toBe("unverified");
    expect(verification(contact("K1", null))).toBe("unverified");
  });

  it("is verified while the pin is the verified key, and changed once the pin moves", () => {
    const verified = markVerified(contact("K1"), "K1");
    expect(verified.verifiedKey).toBe("K1");
    expect(verification(verified)).toBe("verified");
    expect(verification({ ...verified, masterKey: "K2" })).toBe("verified_key_changed");
  });

  it("refuses to mark a key that is not the current pin (the number changed meanwhile)", () => {
    expect(() => markVerified(contact("K2"), "K1")).toThrow(IdentityError);
    expect(() => markVerified(contact("K2"), "K1")).toThrow(/changed while it was compared/);
    expect(() => markVerified(null, "K1")).toThrow(IdentityError);
  });

  it("accepting a changed key makes the contact unverified; otherwise nothing changes", () => {
    const changed = contact("K2", "K1");
    expect(verification(acceptIdentity(changed))).toBe("unverified");
    const verified = contact("K1", "K1");
    expect(acceptIdentity(verified)).toBe(verified);
  });
});

describe("contactIdentity", () => {
  it("gives the vector's safety number over the pinned key, from the local side", async () => {
    const v = CRYPTO.safety_number![0]!;
    const row = { ...contact(v.remote_master_public), accountId: v.remote_account_id };
    const ident = await contactIdentity(v.local_account_id, v.local_master_public, row);
    expect(ident.safetyNumber.digits).toBe(v.digits);
    expect(hexencode(ident.safetyNumber.qrPayload())).toBe(v.local_qr_hex);
    expect(ident.verification).toBe("unverified");
    // Three lines of four groups of five, in order.
    const lines = digitLines(ident.safetyNumber);
    expect(lines.map((l) => l.length)).toEqual([4, 4, 4]);
    expect(lines.flat().join("")).toBe(v.digits);
    // The other side's code, as `porch verify --json` prints it, matches.
    expect(ident.safetyNumber.compare(parseScanned(v.remote_qr_hex))).toBe("match");
  });

  it("needs a pinned key, another account, and keys of the right shape", async () => {
    const v = CRYPTO.safety_number![0]!;
    await expect(contactIdentity(ALICE, v.local_master_public, null)).rejects.toThrow(
      /not known yet/,
    );
    await expect(
      contactIdentity(BOB, v.local_master_public, contact(v.remote_master_public)),
    ).rejects.toThrow(/between two accounts/);
    await expect(
      contactIdentity(ALICE, v.local_master_public, contact("AAAA")),
    ).rejects.toBeInstanceOf(IdentityError);
  });
});

describe("parseScanned", () => {
  it("reads hex with spaces and either case; refuses anything else or too much", () => {
    expect(parseScanned("08 02\n12AB")).toEqual(hexdecode("080212ab"));
    for (const bad of ["", "0", "zz", "08021", "ab".repeat(1025)])
      expect(() => parseScanned(bad)).toThrow(IdentityError);
  });
});

describe("ClientCore: verifying a contact through its real key changes", () => {
  it("pins, marks verified, turns 'key changed' on a new key, and accepts it", async () => {
    const alice = await makePeer(ALICE);
    const bob = await makePeer(BOB);
    await alice.core.checkBundle(await bundleOf(bob, false));
    const pinned = (await alice.store.contact(BOB))!;
    expect(pinned.masterKey).toBe(bob.master.publicB64);
    await alice.core.markVerified(BOB, bob.master.publicB64);
    expect(verification(await alice.store.contact(BOB))).toBe("verified");

    // Bob registers again: a new master key that verifies. The pin moves, with a notice.
    bob.master = await MasterKey.fromPrivateBytes(
      globalThis.crypto.getRandomValues(new Uint8Array(32)),
    );
    const actions = await alice.core.checkBundle(await bundleOf(bob, false));
    expect(actions).toContainEqual({
      type: "EmitEvent",
      event: { type: "IdentityChanged", accountId: BOB },
    });
    const moved = (await alice.store.contact(BOB))!;
    expect(moved.masterKey).toBe(bob.master.publicB64);
    expect(verification(moved)).toBe("verified_key_changed");
    // The old key can no longer be marked; the new one can, or it can be accepted unverified.
    await expect(alice.core.markVerified(BOB, pinned.masterKey!)).rejects.toThrow(IdentityError);
    await alice.core.acceptIdentity(BOB);
    expect(verification(await alice.store.contact(BOB))).toBe("unverified");
    await alice.core.markVerified(BOB, bob.master.publicB64);
    expect(verification(await alice.store.contact(BOB))).toBe("verified");
  });
});

describe("Outbox: texts to a verified contact whose key changed", () => {
  it("are paused, not encrypted to the new key; go once accepted (./outbox_paused.test.ts)", async () => {
    const alice = await makePeer(ALICE);
    const bob = await makePeer(BOB);
    await alice.core.checkBundle(await bundleOf(bob, false));
    await alice.core.markVerified(BOB, bob.master.publicB64);
    bob.master = await MasterKey.fromPrivateBytes(
      globalThis.crypto.getRandomValues(new Uint8Array(32)),
    );
    await alice.core.checkBundle(await bundleOf(bob, false));

    const { clientId } = await alice.core.sendText(BOB, "are you really bob?");
    const prepare = async (): Promise<Action[]> => {
      const [item] = await alice.core.nextOutboxItems();
      if (!item) return [];
      let actions = await alice.core.prepare(item);
      // One claim per account: Bob's, and the listing of Alice's own devices (sent copies).
      for (const claim of actions.filter((a): a is ClaimKeys => a.type === "ClaimKeys")) {
        const bundle = claim.listing ? await bundleOf(alice, false) : await bundleOf(bob, true);
        actions = [...actions, ...(await alice.core.keysClaimed(claim, bundle))];
      }
      return actions;
    };
    const held = await prepare();
    expect(held).toContainEqual({ type: "SendSettled", clientId, ts: 0, error: SEND_PAUSED });
    // Paused before any claim: a held text takes none of Bob's one-time keys.
    expect(held.some((a) => a.type === "SendFrame" || a.type === "ClaimKeys")).toBe(false);
    const history = await alice.store.history(BOB);
    expect(history.find((m) => m.clientId === clientId)!.status).toBe("queued");
    expect(history.filter((m) => m.status === "notice")).toHaveLength(1); // the changed number
    expect(await alice.store.outboxSize()).toBe(0);
    expect(await alice.store.pausedIds(BOB)).toEqual([clientId]);
    expect(await alice.core.typingFrame(BOB, true)).toBeNull(); // no typing to the new key either

    await alice.core.acceptIdentity(BOB);
    const sent = (await prepare()).filter((a) => a.type === "SendFrame");
    expect(sent).toEqual([expect.objectContaining({ clientId })]);
    expect(await alice.core.typingFrame(BOB, true)).not.toBeNull(); // a session, an accepted key
  });
});
