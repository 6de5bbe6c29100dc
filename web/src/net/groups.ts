/**
 * Groups for people: create, add, remove, leave, refresh (mirrors src/porch/client/groups.py;
 * issue 7 spec B and E). Each change goes: the server first (the authority on members and
 * roles; a `revision_conflict` is answered by refetching and trying once more), then the local
 * store (through the core), then the outbox: a `group_update` content for `g:<group id>`
 * (delivered to every member device over Megolm) and a `group_state_key` when the key changed
 * or someone new must be able to open the state. A removal gives the group a new state key (a
 * new epoch) and a new Megolm session, so the removed member reads nothing that follows.
 */

import type { Action } from "../core/actions";
import { ClientError, ServerError } from "../core/errors";
import { formatGroupLink, parseGroupLink } from "../core/group_links";
import { type GroupNotice, noticeRow, stateNotice } from "../core/group_notices";
import { labelsOf, type ServerGroup } from "../core/group_sync";
import type { GroupRole, LocalGroup } from "../core/types";
import { type Encodable, encodeContent } from "../crypto/content";
import {
  DEFAULT_SETTINGS,
  type GroupSettings,
  type GroupState,
  blobEpoch,
  sealGroupState,
  stateToJson,
} from "../crypto/group_state";
import { b64decode, b64encode } from "../protocol/codec";
import { GroupApi } from "./group_api";
import { type GroupSteps, explained, revokeGroupInvite, setGroupSettings } from "./group_settings";
import type { Runner } from "./runner";

export class Groups {
  readonly api: GroupApi;

  constructor(
    private readonly runner: () => Runner,
    private readonly perform: (actions: Action[]) => void,
  ) {
    this.api = new GroupApi(runner().api);
  }

  /** The steps changes share, for those kept in their own modules (./group_settings). */
  readonly steps: GroupSteps = {
    api: () => this.api,
    me: () => this.#me(),
    current: (groupId) => this.#current(groupId),
    stored: (group) => this.#stored(group),
    tell: (groupId, content) => this.#tell(groupId, content),
    notice: (groupId, revision, notice) => this.#notice(groupId, revision, notice),
    retry: (groupId, known, call) => this.#retry(groupId, known, call),
    sealed: (groupId, known, change, action) => this.#sealed(groupId, known, change, action),
    local: (groupId) => this.#core().core.state.store.group(groupId),
  };

  #core() {
    const core = this.runner().core;
    if (!core.groups) throw new ClientError("groups are not enabled in this client", "usage");
    return { core, groups: core.groups };
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.runner().serial(fn);
  }

  async #stored(group: ServerGroup): Promise<void> {
    const { core } = this.#core();
    this.perform(await this.#serial(() => core.groupFetched(group)));
  }

  /** Queue a content for every member device of the group (recipient `g:<id>`). */
  async #tell(groupId: string, content: Encodable): Promise<void> {
    const { core } = this.#core();
    await this.#serial(() => core.state.queueContent(`g:${groupId}`, encodeContent(content)));
    this.perform(core.state.take());
  }

  async #current(groupId: string): Promise<ServerGroup> {
    const group = await this.api.get(groupId);
    await this.#stored(group);
    return group;
  }

  async #retry(
    groupId: string,
    known: ServerGroup,
    call: (g: ServerGroup) => Promise<ServerGroup>,
  ): Promise<ServerGroup> {
    try {
      return await call(known);
    } catch (exc) {
      if (!(exc instanceof ServerError) || exc.code !== "revision_conflict") throw exc;
    }
    return call(await this.#current(groupId));
  }

  async #currentKey(groupId: string): Promise<Encodable> {
    const { core } = this.#core();
    const latest = await core.state.store.latestStateKey(groupId);
    if (!latest) throw new ClientError("this device has no key for that group yet", "no_key");
    return { t: "group_state_key", group: groupId, epoch: latest[0], key: b64encode(latest[1]) };
  }

  /** This device's own change as a line of the group's chat (others see it from the
   * group_update, core/group_notices.ts). */
  async #notice(groupId: string, revision: number, notice: GroupNotice): Promise<void> {
    const { core } = this.#core();
    const state = core.state;
    const label = await labelsOf(state, notice.targets);
    const row = await noticeRow(groupId, revision, notice, state.clock(), label, state.accountId);
    await this.#serial(() => state.store.commit({ messages: [row] }));
  }

  #me(): string {
    return this.#core().core.state.accountId;
  }

  // Creating ------------------------------------------------------------------------------

  async create(name: string, accounts: readonly string[]): Promise<string> {
    const { core, groups } = this.#core();
    const me = core.state.accountId;
    if (accounts.includes(me))
      throw new ClientError("you are in your own groups already: name the others", "usage");
    const state: GroupState = {
      name: name.trim(),
      description: "",
      avatar: null,
      timerSeconds: 0,
      settings: DEFAULT_SETTINGS,
    };
    try {
      stateToJson(state);
    } catch (exc) {
      throw new ClientError(`cannot use that name: ${(exc as Error).message}`, "usage");
    }
    const gid = globalThis.crypto.randomUUID();
    const key = await this.#serial(() => groups.crypto.newStateKey(gid)); // epoch 0
    const blob = await sealGroupState(b64decode(key.key), gid, 1, key.epoch, state);
    const group = await this.api.create(gid, blob, DEFAULT_SETTINGS, [...new Set(accounts)]);
    await this.#stored(group);
    await this.#tell(gid, key);
    await this.#tell(gid, {
      t: "group_update",
      group: gid,
      revision: group.revision,
      action: "create",
      targets: [...new Set(accounts)],
    });
    await this.#notice(gid, group.revision, {
      by: me,
      action: "create",
      targets: [...new Set(accounts)],
    });
    return gid;
  }

  // Members -------------------------------------------------------------------------------

  async add(groupId: string, accounts: readonly string[]): Promise<void> {
    const known = await this.#current(groupId);
    const fresh = accounts.filter((a) => !known.members.some((m) => m.account === a));
    if (!fresh.length) throw new ClientError("everyone you named is in the group already", "usage");
    const group = await this.#retry(groupId, known, (g) =>
      this.api.addMembers(groupId, g.revision, fresh),
    );
    await this.#stored(group);
    await this.#tell(groupId, await this.#currentKey(groupId)); // so the new ones open the state
    await this.#tell(groupId, {
      t: "group_update",
      group: groupId,
      revision: group.revision,
      action: "add",
      targets: fresh,
    });
    await this.#notice(groupId, group.revision, { by: this.#me(), action: "add", targets: fresh });
  }

  async remove(groupId: string, account: string): Promise<void> {
    const { core } = this.#core();
    if (account === core.state.accountId)
      throw new ClientError("to remove yourself from a group, leave it", "usage");
    const known = await this.#current(groupId);
    const group = await this.#retry(groupId, known, (g) =>
      this.api.removeMember(groupId, account, g.revision),
    );
    await this.#stored(group); // the removed member gone: the next send rotates the session
    const update: Encodable = {
      t: "group_update",
      group: groupId,
      revision: group.revision,
      action: "remove",
      targets: [account],
    };
    await this.#tell(groupId, update);
    // The removed member is no longer told what the group is told; one update over Olm
    // tells it who removed it (the server's group_changed reaches only online devices).
    await this.#serial(() => core.state.queueContent(account, encodeContent(update)));
    this.perform(core.state.take());
    await this.#notice(groupId, group.revision, {
      by: this.#me(),
      action: "remove",
      targets: [account],
    });
    await this.rotateStateKey(groupId);
  }

  async leave(groupId: string): Promise<void> {
    const { core, groups } = this.#core();
    const store = core.state.store;
    const local = await store.group(groupId);
    groups.sync.left.add(groupId); // its group_changed hint would fetch a 404
    try {
      await this.api.leave(groupId);
    } catch (exc) {
      groups.sync.left.delete(groupId);
      throw exc;
    }
    if (!local) return;
    const others = local.members.filter((m) => m.accountId !== core.state.accountId);
    const left: LocalGroup = {
      ...local,
      members: others,
      role: "member",
      revision: local.revision + 1,
    };
    await this.#serial(() => store.commit({ groups: [left] }));
    await this.#tell(groupId, {
      t: "group_update",
      group: groupId,
      revision: left.revision,
      action: "leave",
      targets: [],
    });
    await this.#notice(groupId, left.revision, {
      by: core.state.accountId,
      action: "leave",
      targets: [],
    });
  }

  // Roles, the name, invite links and join requests (issue 9) ------------------------------

  async setRole(groupId: string, account: string, role: GroupRole): Promise<void> {
    const known = await this.#current(groupId);
    if (!known.members.some((m) => m.account === account))
      throw new ClientError("that person is not a member of this group any more", "usage");
    const group = await this.#retry(groupId, known, (g) =>
      this.api.setRole(groupId, account, g.revision, role),
    );
    await this.#stored(group);
    const action = role === "admin" ? "promote" : "demote";
    await this.#tell(groupId, {
      t: "group_update",
      group: groupId,
      revision: group.revision,
      action,
      targets: [account],
    });
    await this.#notice(groupId, group.revision, { by: this.#me(), action, targets: [account] });
  }

  /** A new name in the sealed state. */
  async rename(groupId: string, name: string): Promise<void> {
    const store = this.#core().core.state.store;
    const known = await this.#current(groupId);
    const before = await store.group(groupId);
    if (!before?.state)
      throw new ClientError(
        "this device has no key for this group yet, so it cannot change its name; try again once a member's key has arrived",
        "no_key",
      );
    const renamed: GroupState = { ...before.state, name: name.trim() };
    try {
      stateToJson(renamed);
    } catch (exc) {
      throw new ClientError(`cannot use that name: ${(exc as Error).message}`, "usage");
    }
    const group = await explained(
      this.#sealed(groupId, known, (base) => ({ ...base, name: renamed.name }), "state"),
      "only admins can change this group's name: its settings do not let members edit the group info; ask an admin",
    );
    const notice = stateNotice(this.#me(), before.state, renamed);
    if (notice) await this.#notice(groupId, group.revision, notice);
  }

  /** The state changed by `change` and sealed for revision + 1 (the revision the upload
   * makes), stored, and told to the members as `action`. After a revision_conflict the
   * refetched state is the base: only what `change` sets changes. */
  async #sealed(
    groupId: string,
    known: ServerGroup,
    change: (base: GroupState) => GroupState,
    action: "state" | "settings",
  ): Promise<ServerGroup> {
    const store = this.#core().core.state.store;
    const put = async (g: ServerGroup) => {
      const latest = await store.latestStateKey(groupId);
      const base = (await store.group(groupId))?.state;
      if (!latest || !base)
        throw new ClientError("this device has no key for that group yet", "no_key");
      const blob = await sealGroupState(
        latest[1],
        groupId,
        g.revision + 1,
        latest[0],
        change(base),
      );
      return this.api.putState(groupId, g.revision, blob);
    };
    const group = await this.#retry(groupId, known, put);
    await this.#stored(group);
    // Sealed under a key the members may not have (a rotation's): tell it with the state.
    if (blobEpoch(group.state) !== blobEpoch(known.state))
      await this.#tell(groupId, await this.#currentKey(groupId));
    await this.#tell(groupId, {
      t: "group_update",
      group: groupId,
      revision: group.revision,
      action,
      targets: [],
    });
    return group;
  }

  /** New settings, kept in step in both copies (./group_settings). */
  setSettings(groupId: string, change: Partial<GroupSettings>): Promise<void> {
    return setGroupSettings(this.steps, groupId, change);
  }

  /** Turn the invite link off (./group_settings). */
  revokeInvite(groupId: string): Promise<void> {
    return revokeGroupInvite(this.steps, groupId);
  }

  /** A new invite link (the old one stops working); it carries the key that opens the state
   * as it is now (a later key may exist here unused; the joiner gets later keys as a member). */
  async invite(groupId: string): Promise<string> {
    const { core } = this.#core();
    const token = await this.api.createInvite(groupId);
    const group = await this.#current(groupId);
    const epoch = blobEpoch(group.state);
    const key = await core.state.store.stateKey(groupId, epoch);
    if (key) return formatGroupLink({ token, stateKey: key, epoch });
    const latest = await core.state.store.latestStateKey(groupId);
    if (!latest) throw new ClientError("this device has no key for that group yet", "no_key");
    return formatGroupLink({ token, stateKey: latest[1], epoch: latest[0] });
  }

  /** Join by an invite link: the group id once in, or null while an admin has to approve. */
  async join(link: string): Promise<{ groupId: string; joined: boolean }> {
    const { core } = this.#core();
    const parsed = parseGroupLink(link); // refused before any request
    const result = await this.api.join(parsed.token);
    // Kept even while pending: once approved, it opens the state.
    await this.#serial(() =>
      core.state.store.commit({
        stateKeys: [{ groupId: result.groupId, epoch: parsed.epoch, key: parsed.stateKey }],
      }),
    );
    if (result.group === null) return { groupId: result.groupId, joined: false };
    await this.#stored(result.group);
    const rev = result.group.revision;
    await this.#tell(result.groupId, {
      t: "group_update",
      group: result.groupId,
      revision: rev,
      action: "join",
      targets: [],
    });
    await this.#notice(result.groupId, rev, { by: this.#me(), action: "join", targets: [] });
    return { groupId: result.groupId, joined: true };
  }

  /** Approve or deny a join request; an approval tells the members (as an add) and gives
   * the newcomer the state key. */
  async answer(groupId: string, account: string, approve: boolean): Promise<void> {
    const known = await this.#current(groupId);
    if (!known.pending.includes(account))
      throw new ClientError("that person is not waiting to join any more", "usage");
    const group = await this.api.answerRequest(groupId, account, approve);
    await this.#stored(group);
    const me = this.#me();
    if (!approve) {
      await this.#notice(groupId, group.revision, { by: me, action: "deny", targets: [account] });
      return;
    }
    await this.#tell(groupId, await this.#currentKey(groupId));
    await this.#tell(groupId, {
      t: "group_update",
      group: groupId,
      revision: group.revision,
      action: "add",
      targets: [account],
    });
    await this.#notice(groupId, group.revision, { by: me, action: "add", targets: [account] });
  }

  // The sealed state ----------------------------------------------------------------------

  /** A new state key (next epoch), the state sealed under it, the key told to the members:
   * after someone went, so they cannot read what follows. */
  async rotateStateKey(groupId: string): Promise<void> {
    const { core, groups } = this.#core();
    await this.#serial(() => groups.crypto.memberRemoved(groupId));
    await this.#serial(() => groups.crypto.newStateKey(groupId));
    const local = await core.state.store.group(groupId);
    if (!local?.state) return; // nothing this device can seal; a member with the key will
    const opened = local.state;
    const put = async (g: ServerGroup) => {
      const latest = (await core.state.store.latestStateKey(groupId))!;
      const blob = await sealGroupState(latest[1], groupId, g.revision + 1, latest[0], opened);
      return this.api.putState(groupId, g.revision, blob);
    };
    const group = await this.#retry(groupId, await this.#current(groupId), put);
    await this.#stored(group);
    await this.#tell(groupId, await this.#currentKey(groupId));
  }

  /** Tell the members the current state key: someone new may have joined by a link made
   * before a rotation (core ShareStateKey). */
  async shareStateKey(groupId: string): Promise<void> {
    await this.#tell(groupId, await this.#currentKey(groupId));
  }

  /** Fetch the groups whose revision moved while this device was away (group_changed
   * hints are online only). */
  async refresh(): Promise<void> {
    const { core } = this.#core();
    for (const ref of await this.api.list()) {
      const local = await core.state.store.group(ref.id);
      if (!local || local.revision !== ref.revision || !local.state) await this.#current(ref.id);
    }
  }
}
