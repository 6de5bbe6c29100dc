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
import type { ServerGroup } from "../core/group_sync";
import type { LocalGroup } from "../core/types";
import { type Encodable, encodeContent } from "../crypto/content";
import {
  DEFAULT_SETTINGS,
  type GroupState,
  sealGroupState,
  stateToJson,
} from "../crypto/group_state";
import { b64decode, b64encode } from "../protocol/codec";
import { GroupApi } from "./group_api";
import type { Runner } from "./runner";

export class Groups {
  readonly api: GroupApi;

  constructor(
    private readonly runner: () => Runner,
    private readonly perform: (actions: Action[]) => void,
  ) {
    this.api = new GroupApi(runner().api);
  }

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
