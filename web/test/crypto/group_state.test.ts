import { describe, expect, it } from "vitest";
import {
  type GroupState,
  associatedData,
  blobEpoch,
  openGroupState,
  padState,
  sealGroupState,
  sealGroupStateWith,
  stateToJson,
} from "../../src/crypto/group_state";
import { hexdecode, hexencode, utf8decode } from "../../src/protocol/codec";
import { CRYPTO } from "../vectors";

function stateOf(v: Record<string, any>): GroupState {
  const s = v.state;
  return {
    name: s.name,
    description: s.description,
    avatar: s.avatar,
    timerSeconds: s.timer,
    settings: { membersCanEdit: s.members_can_edit, joinApproval: s.join_approval },
  };
}

const KEY = new Uint8Array(32).fill(9);

describe("sealed group state", () => {
  it.each(CRYPTO.group_state!)("group_state vector epoch $epoch revision $revision", async (v) => {
    const state = stateOf(v);
    expect(utf8decode(stateToJson(state))).toBe(v.json);
    expect(padState(stateToJson(state)).length).toBe(v.padded_length);
    const blob = hexdecode(v.blob_hex);
    expect(hexencode(associatedData(v.group, v.revision, blob.subarray(0, 5)))).toBe(v.aad_hex);
    const key = hexdecode(v.key_hex);
    const sealed = await sealGroupStateWith(
      key,
      v.group,
      v.revision,
      v.epoch,
      state,
      hexdecode(v.nonce_hex),
    );
    expect(hexencode(sealed)).toBe(v.blob_hex);
    expect(blobEpoch(blob)).toBe(v.epoch);
    expect(await openGroupState(key, v.group, v.revision, blob)).toEqual(state);
  });

  it("binds a blob to its group, revision and key", async () => {
    const state: GroupState = {
      name: "Climbing",
      description: "",
      avatar: null,
      timerSeconds: 0,
      settings: { membersCanEdit: true, joinApproval: false },
    };
    const blob = await sealGroupState(KEY, "g-1", 3, 2, state);
    expect(blobEpoch(blob)).toBe(2);
    expect(await openGroupState(KEY, "g-1", 3, blob)).toEqual(state);
    await expect(openGroupState(KEY, "g-2", 3, blob)).rejects.toMatchObject({
      code: "decrypt_failed",
    });
    await expect(openGroupState(KEY, "g-1", 4, blob)).rejects.toMatchObject({
      code: "decrypt_failed",
    });
    await expect(openGroupState(new Uint8Array(32), "g-1", 3, blob)).rejects.toMatchObject({
      code: "decrypt_failed",
    });
    await expect(openGroupState(KEY, "g-1", 3, blob, 4)).rejects.toMatchObject({
      code: "stale_revision",
    });
    const tampered = blob.slice();
    tampered[30] = tampered[30]! ^ 1;
    await expect(openGroupState(KEY, "g-1", 3, tampered)).rejects.toMatchObject({
      code: "decrypt_failed",
    });
  });

  it("refuses a state outside the bounds", async () => {
    const base: GroupState = {
      name: "x",
      description: "",
      avatar: null,
      timerSeconds: 0,
      settings: { membersCanEdit: true, joinApproval: false },
    };
    expect(() => stateToJson({ ...base, name: "" })).toThrow(/must not be empty/);
    expect(() => stateToJson({ ...base, name: "a".repeat(129) })).toThrow(/exceeds 128/);
    expect(() => stateToJson({ ...base, name: "a\nb" })).toThrow(/control/);
    expect(() => stateToJson({ ...base, timerSeconds: -1 })).toThrow(/timer/);
    // 128 four-byte characters are 128 characters, as Python counts them.
    expect(() => stateToJson({ ...base, name: "🧗".repeat(128) })).not.toThrow();
  });
});
