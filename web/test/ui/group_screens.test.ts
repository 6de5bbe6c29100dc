import { describe, expect, it } from "vitest";
import type { LocalGroup } from "../../src/core/types";
import { infoKey } from "../../src/ui/group_screens";

function group(): LocalGroup {
  return {
    groupId: "g1",
    revision: 3,
    role: "admin",
    blob: new Uint8Array([1, 2, 3]),
    settings: { membersCanEdit: false, joinApproval: false },
    invite: false,
    members: [
      { accountId: "alice", role: "admin" },
      { accountId: "bob", role: "member" },
    ],
    pending: [],
    state: null,
    stateRevision: 3,
  };
}

describe("the group info panel's key (what a re-render would show)", () => {
  const labels = new Map([["bob", "@bob"]]);
  const label = (account: string) => labels.get(account);

  it("is the same for the same group, so a receipt does not replace the panel", () => {
    expect(infoKey(group(), null, label)).toBe(infoKey(group(), null, label));
    const resealed = { ...group(), blob: new Uint8Array([9]) }; // not shown until opened
    expect(infoKey(resealed, null, label)).toBe(infoKey(group(), null, label));
  });

  it("changes with anything the panel shows", () => {
    const base = infoKey(group(), null, label);
    const removed = { ...group(), members: group().members.slice(0, 1), revision: 4 };
    expect(infoKey(removed, null, label)).not.toBe(base);
    const asked = { ...group(), pending: ["carol"] };
    expect(infoKey(asked, null, label)).not.toBe(base);
    const open = { ...group(), settings: { membersCanEdit: true, joinApproval: false } };
    expect(infoKey(open, null, label)).not.toBe(base);
    expect(infoKey(group(), "https://porch.example/#join", label)).not.toBe(base);
    expect(infoKey(group(), null, (a) => (a === "bob" ? "Bob B." : undefined))).not.toBe(base);
  });
});
