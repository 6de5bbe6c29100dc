/**
 * The server's group routes as typed calls (mirrors src/porch/client/group_api.py; issue 7
 * spec B; docs/protocol.md, "Groups"). Errors map as for every route (ServerError with the
 * server's code: `not_found`, `revision_conflict`, `group_full`, `forbidden`, ...). Every
 * answer is checked against the spec's bounds before it is used: a malformed group, or more
 * members than any server may hold, is refused as `bad_response` instead of believed.
 */

import { ClientError, ServerError } from "../core/errors";
import { TOKEN } from "../core/group_links";
import type { ServerGroup } from "../core/group_sync";
import type { GroupRole } from "../core/types";
import { MAX_BLOB_BYTES } from "../crypto/group_state";
import { b64decode, b64encode } from "../protocol/codec";
import type { HttpApi } from "./http";

export const MAX_REVISION = 2 ** 53 - 1;
export const MAX_GROUP_MEMBERS = 100_000;
export const MAX_LISTED_GROUPS = 100_000;
export const MAX_ACCOUNTS_PER_CALL = 1000;
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_STATE_CHARS = Math.ceil(MAX_BLOB_BYTES / 3) * 4;

function bad(what: string): never {
  throw new ServerError("bad_response", `the server's answer is malformed: ${what}`);
}

function field(obj: unknown, name: string): unknown {
  if (typeof obj !== "object" || obj === null || !(name in obj)) bad(`${name} is missing`);
  return (obj as Record<string, unknown>)[name];
}

function id(value: unknown, what: string): string {
  if (typeof value !== "string" || !ID.test(value)) bad(`${what} is not an id`);
  return value;
}

function revision(value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) bad("revision is not in 0..2**53-1");
  return value as number;
}

function bool(value: unknown, what: string): boolean {
  if (typeof value !== "boolean") bad(`${what} is not a boolean`);
  return value;
}

function list(value: unknown, what: string, limit: number): unknown[] {
  if (!Array.isArray(value)) bad(`${what} is not a list`);
  if (value.length > limit) bad(`${what} has more than ${limit} entries`);
  return value;
}

export function parseGroup(obj: unknown): ServerGroup {
  const state = field(obj, "state");
  if (typeof state !== "string" || !state || state.length > MAX_STATE_CHARS)
    bad(`state is not a base64 blob of at most ${MAX_BLOB_BYTES} bytes`);
  let blob: Uint8Array;
  try {
    blob = b64decode(state);
  } catch {
    bad("state is not base64");
  }
  const seen = new Set<string>();
  const members = list(field(obj, "members"), "members", MAX_GROUP_MEMBERS).map((m) => {
    const account = id(field(m, "account"), "member account");
    const role = field(m, "role");
    if (role !== "admin" && role !== "member") bad("member role is not admin or member");
    if (seen.has(account)) bad("a member is listed twice");
    seen.add(account);
    return { account, role: role as GroupRole };
  });
  const settings = field(obj, "settings");
  return {
    id: id(field(obj, "id"), "group id"),
    revision: revision(field(obj, "revision")),
    state: blob,
    stateRevision: revision(field(obj, "state_revision")),
    settings: {
      membersCanEdit: bool(field(settings, "members_can_edit"), "members_can_edit"),
      joinApproval: bool(field(settings, "join_approval"), "join_approval"),
    },
    members,
    pending: list(field(obj, "pending"), "pending", MAX_GROUP_MEMBERS).map((a) =>
      id(a, "pending account"),
    ),
    invite: bool(field(obj, "invite"), "invite"),
  };
}

/** What `POST /v1/groups/join` answers: in, or waiting for an admin's approval. */
export type JoinResult =
  | { status: "joined"; groupId: string; group: ServerGroup }
  | { status: "pending"; groupId: string; group: null };

export function parseJoin(obj: unknown): JoinResult {
  const status = field(obj, "status");
  if (status === "joined") {
    const group = parseGroup(field(obj, "group"));
    return { status, groupId: group.id, group };
  }
  if (status === "pending")
    return { status, groupId: id(field(obj, "group_id"), "group id"), group: null };
  bad("join status is not joined or pending");
}

export function parseToken(obj: unknown): string {
  const token = field(obj, "token");
  if (typeof token !== "string" || !TOKEN.test(token))
    bad("invite token is not 43 characters of base64url");
  return token;
}

function checkId(value: string, what: string): string {
  // Checked before it goes into a path: an id is never a path segment of something else.
  if (!ID.test(value)) throw new ClientError(`${what} is not an id (a lowercase UUID)`, "usage");
  return value;
}

function checkAccounts(accounts: readonly string[]): string[] {
  if (accounts.length > MAX_ACCOUNTS_PER_CALL)
    throw new ClientError(
      `at most ${MAX_ACCOUNTS_PER_CALL} accounts can be added at once`,
      "usage",
    );
  if (new Set(accounts).size !== accounts.length)
    throw new ClientError("an account is listed twice", "usage");
  return accounts.map((a) => checkId(a, "account"));
}

function checkRevision(rev: number): number {
  if (!Number.isSafeInteger(rev) || rev < 0)
    throw new ClientError("revision must be an integer in 0..2**53-1", "usage");
  return rev;
}

function checkState(state: Uint8Array): string {
  if (state.length < 1 || state.length > MAX_BLOB_BYTES)
    throw new ClientError(`the sealed state must be 1..${MAX_BLOB_BYTES} bytes`, "usage");
  return b64encode(state);
}

const settingsJson = (s: ServerGroup["settings"]) => ({
  members_can_edit: s.membersCanEdit,
  join_approval: s.joinApproval,
});

/** Every group route this client uses; `api` carries the device's credentials. */
export class GroupApi {
  constructor(private readonly api: HttpApi) {}

  async create(
    groupId: string,
    state: Uint8Array,
    settings: ServerGroup["settings"],
    members: readonly string[],
  ): Promise<ServerGroup> {
    const body = {
      id: checkId(groupId, "group id"),
      state: checkState(state),
      settings: settingsJson(settings),
      members: checkAccounts(members),
    };
    return parseGroup(await this.api.call("POST", "/v1/groups", body));
  }

  async list(): Promise<Array<{ id: string; revision: number }>> {
    const body = await this.api.call("GET", "/v1/groups");
    return list(field(body, "groups"), "groups", MAX_LISTED_GROUPS).map((g) => ({
      id: id(field(g, "id"), "group id"),
      revision: revision(field(g, "revision")),
    }));
  }

  async get(groupId: string): Promise<ServerGroup> {
    return parseGroup(await this.api.call("GET", `/v1/groups/${checkId(groupId, "group id")}`));
  }

  async putState(groupId: string, rev: number, state: Uint8Array): Promise<ServerGroup> {
    const path = `/v1/groups/${checkId(groupId, "group id")}/state`;
    return parseGroup(
      await this.api.call("PUT", path, { revision: checkRevision(rev), state: checkState(state) }),
    );
  }

  /** Admins only; the settings unchanged answer the group as it is (same revision). */
  async putSettings(
    groupId: string,
    rev: number,
    settings: ServerGroup["settings"],
  ): Promise<ServerGroup> {
    const path = `/v1/groups/${checkId(groupId, "group id")}/settings`;
    const body = { revision: checkRevision(rev), settings: settingsJson(settings) };
    return parseGroup(await this.api.call("PUT", path, body));
  }

  async addMembers(
    groupId: string,
    rev: number,
    accounts: readonly string[],
  ): Promise<ServerGroup> {
    if (!accounts.length) throw new ClientError("name at least one account to add", "usage");
    const path = `/v1/groups/${checkId(groupId, "group id")}/members`;
    const body = { revision: checkRevision(rev), accounts: checkAccounts(accounts) };
    return parseGroup(await this.api.call("POST", path, body));
  }

  async removeMember(groupId: string, account: string, rev: number): Promise<ServerGroup> {
    const gid = checkId(groupId, "group id");
    const path = `/v1/groups/${gid}/members/${checkId(account, "account")}?revision=${checkRevision(rev)}`;
    return parseGroup(await this.api.call("DELETE", path));
  }

  async leave(groupId: string): Promise<void> {
    await this.api.call("POST", `/v1/groups/${checkId(groupId, "group id")}/leave`);
  }

  async setRole(
    groupId: string,
    account: string,
    rev: number,
    role: GroupRole,
  ): Promise<ServerGroup> {
    if (role !== "admin" && role !== "member")
      throw new ClientError("role must be admin or member", "usage");
    const path = `/v1/groups/${checkId(groupId, "group id")}/members/${checkId(account, "account")}/role`;
    return parseGroup(await this.api.call("PUT", path, { revision: checkRevision(rev), role }));
  }

  /** A new invite token; the old one stops working. */
  async createInvite(groupId: string): Promise<string> {
    const path = `/v1/groups/${checkId(groupId, "group id")}/invite`;
    return parseToken(await this.api.call("POST", path));
  }

  /** Turn the invite link off: joining by its token is `not_found` from then on. */
  async revokeInvite(groupId: string): Promise<void> {
    await this.api.call("DELETE", `/v1/groups/${checkId(groupId, "group id")}/invite`);
  }

  async join(token: string): Promise<JoinResult> {
    if (!TOKEN.test(token))
      throw new ClientError("an invite token is 43 characters of base64url", "usage");
    return parseJoin(await this.api.call("POST", "/v1/groups/join", { token }));
  }

  async answerRequest(groupId: string, account: string, approve: boolean): Promise<ServerGroup> {
    const path = `/v1/groups/${checkId(groupId, "group id")}/requests/${checkId(account, "account")}`;
    return parseGroup(await this.api.call("POST", path, { approve }));
  }
}
