import { describe, expect, it } from "vitest";
import { ClientError, ServerError } from "../../src/core/errors";
import { GroupApi, parseGroup } from "../../src/net/group_api";
import { HttpApi } from "../../src/net/http";
import { b64encode } from "../../src/protocol/codec";

const GID = "9a9a9a9a-1111-4222-8333-444444444444";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";

function answer(over: Record<string, unknown> = {}) {
  return {
    id: GID,
    revision: 3,
    state: b64encode(new Uint8Array(40).fill(1)),
    state_revision: 2,
    settings: { members_can_edit: true, join_approval: false },
    members: [{ account: BOB, role: "admin" }],
    pending: [],
    invite: false,
    ...over,
  };
}

describe("group routes", () => {
  it("reads a group answer field by field", () => {
    const group = parseGroup(answer());
    expect(group).toMatchObject({
      id: GID,
      revision: 3,
      stateRevision: 2,
      settings: { membersCanEdit: true, joinApproval: false },
      members: [{ account: BOB, role: "admin" }],
    });
    expect(group.state.length).toBe(40);
  });

  it.each([
    ["a revision beyond 2**53", { revision: 2 ** 53 }],
    [
      "a member listed twice",
      {
        members: [
          { account: BOB, role: "admin" },
          { account: BOB, role: "member" },
        ],
      },
    ],
    ["an unknown role", { members: [{ account: BOB, role: "owner" }] }],
    ["an id that is not a UUID", { id: "../keys" }],
    ["a state too large", { state: "A".repeat(20_000) }],
    ["settings that are not booleans", { settings: { members_can_edit: 1, join_approval: false } }],
  ])("refuses %s as bad_response", (_what, over) => {
    expect(() => parseGroup(answer(over))).toThrow(
      expect.objectContaining({ code: "bad_response" }),
    );
    expect(() => parseGroup(answer(over))).toThrow(ServerError);
  });

  it("checks ids and account lists before any request", async () => {
    const seen: string[] = [];
    const api = new GroupApi(
      new HttpApi("http://porch.test", null, async (url) => {
        seen.push(url);
        return new Response(JSON.stringify(answer()), { status: 200 });
      }),
    );
    await expect(api.get("../../v1/keys")).rejects.toThrow(ClientError);
    await expect(api.addMembers(GID, 3, [BOB, BOB])).rejects.toThrow(/twice/);
    await expect(api.addMembers(GID, 3, [])).rejects.toThrow(/at least one/);
    await expect(api.removeMember(GID, BOB, -1)).rejects.toThrow(/revision/);
    expect(seen).toEqual([]);
    expect((await api.removeMember(GID, BOB, 3)).id).toBe(GID);
    expect(seen).toEqual([`http://porch.test/v1/groups/${GID}/members/${BOB}?revision=3`]);
  });
});

describe("roles, invites and join requests", () => {
  const TOKEN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234";
  function recording(body: unknown) {
    const seen: Array<[string, string, unknown]> = [];
    const api = new GroupApi(
      new HttpApi("http://porch.test", null, async (url, init) => {
        const sent = init?.body ? JSON.parse(init.body as string) : null;
        seen.push([init?.method ?? "GET", url.replace("http://porch.test", ""), sent]);
        return new Response(JSON.stringify(body), { status: 200 });
      }),
    );
    return { api, seen };
  }

  it("sends each route as docs/protocol.md says", async () => {
    const { api, seen } = recording(answer());
    await api.setRole(GID, BOB, 3, "member");
    await api.answerRequest(GID, BOB, false);
    expect(seen).toEqual([
      ["PUT", `/v1/groups/${GID}/members/${BOB}/role`, { revision: 3, role: "member" }],
      ["POST", `/v1/groups/${GID}/requests/${BOB}`, { approve: false }],
    ]);
    await expect(api.setRole(GID, BOB, 3, "owner" as never)).rejects.toThrow(/admin or member/);
  });

  it("sends settings and the link's revocation as docs/protocol.md says", async () => {
    const { api, seen } = recording(answer());
    const g = await api.putSettings(GID, 3, { membersCanEdit: false, joinApproval: true });
    expect(g.id).toBe(GID);
    await api.revokeInvite(GID);
    expect(seen).toEqual([
      [
        "PUT",
        `/v1/groups/${GID}/settings`,
        { revision: 3, settings: { members_can_edit: false, join_approval: true } },
      ],
      ["DELETE", `/v1/groups/${GID}/invite`, null],
    ]);
    await expect(
      api.putSettings(GID, -1, { membersCanEdit: true, joinApproval: true }),
    ).rejects.toThrow(/revision/);
    await expect(api.revokeInvite("../keys")).rejects.toThrow(ClientError);
    expect(seen.length).toBe(2);
  });

  it("reads an invite token and both join answers, refusing malformed ones", async () => {
    expect(await recording({ token: TOKEN }).api.createInvite(GID)).toBe(TOKEN);
    await expect(recording({ token: "short" }).api.createInvite(GID)).rejects.toThrow(
      expect.objectContaining({ code: "bad_response" }),
    );
    const joined = await recording({ status: "joined", group: answer() }).api.join(TOKEN);
    expect(joined).toMatchObject({ status: "joined", groupId: GID });
    const pending = recording({ status: "pending", group_id: GID });
    expect(await pending.api.join(TOKEN)).toEqual({ status: "pending", groupId: GID, group: null });
    expect(pending.seen).toEqual([["POST", "/v1/groups/join", { token: TOKEN }]]);
    await expect(recording({ status: "maybe" }).api.join(TOKEN)).rejects.toThrow(ServerError);
    await expect(pending.api.join("not-a-token")).rejects.toThrow(ClientError);
    expect(pending.seen.length).toBe(1);
  });
});
