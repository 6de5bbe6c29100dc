/**
 * A group's disappearing-message timer from the browser (mirrors `porch timer <group>`:
 * src/porch/client/groups.py `set_timer` and group_changes.py `_change_state`). The timer is
 * `timerSeconds` in the group's sealed state (issue 8), so a change is a state change: the
 * state sealed again under the current state key for the next revision and put (a
 * `revision_conflict` is answered by fetching and trying once more), the answer stored through
 * the core (which adds the notice line and emits TimerChanged: core/group_live.ts), then a
 * `group_update` with action `state` told to the group, and the state key too when the blob
 * went out under an epoch the members may not hold.
 */

import type { Action } from "../core/actions";
import { ClientError, ServerError } from "../core/errors";
import type { ServerGroup } from "../core/group_sync";
import { type Encodable, encodeContent } from "../crypto/content";
import { MAX_TIMER_SECONDS, blobEpoch, sealGroupState } from "../crypto/group_state";
import { b64encode } from "../protocol/codec";
import type { GroupApi } from "./group_api";
import type { Runner } from "./runner";

export interface GroupTimerDeps {
  api: GroupApi;
  runner: () => Runner;
  perform(actions: Action[]): void;
}

const NO_KEY =
  "this device has no key for the group yet, so it cannot change its timer; " +
  "try again once a member's key has arrived";

export async function setGroupTimer(
  deps: GroupTimerDeps,
  groupId: string,
  seconds: number,
): Promise<void> {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_TIMER_SECONDS)
    throw new ClientError("a disappearing timer is 0 (off) up to 365 days", "bad_timer");
  const core = () => deps.runner().core;
  const serial = <T>(fn: () => Promise<T>) => deps.runner().serial(fn);
  const store = async (g: ServerGroup) => deps.perform(await serial(() => core().groupFetched(g)));
  const tell = async (content: Encodable) => {
    await serial(() => core().state.queueContent(`g:${groupId}`, encodeContent(content)));
    deps.perform(core().state.take());
  };
  const put = async (g: ServerGroup): Promise<ServerGroup> => {
    const state = core().state;
    const local = await state.store.group(groupId);
    const latest = await state.store.latestStateKey(groupId);
    if (!local?.state || !latest) throw new ClientError(NO_KEY, "no_key");
    const next = { ...local.state, timerSeconds: seconds };
    const blob = await sealGroupState(latest[1], groupId, g.revision + 1, latest[0], next);
    return deps.api.putState(groupId, g.revision, blob);
  };
  let current = await deps.api.get(groupId);
  await store(current);
  // Before the put: the server's group_changed hint may bring the fetch that sees it first.
  const claim = (by: string) => void core().groups?.sync.claim(groupId, by); // "You"
  claim(core().state.accountId);
  let group: ServerGroup;
  try {
    try {
      group = await put(current);
    } catch (exc) {
      if (!(exc instanceof ServerError) || exc.code !== "revision_conflict") throw exc;
      current = await deps.api.get(groupId);
      await store(current);
      claim(core().state.accountId);
      group = await put(current);
    }
  } catch (exc) {
    claim(""); // nothing changed by this account
    throw exc;
  }
  await store(group);
  if (blobEpoch(group.state) !== blobEpoch(current.state)) {
    const latest = (await core().state.store.latestStateKey(groupId))!;
    await tell({
      t: "group_state_key",
      group: groupId,
      epoch: latest[0],
      key: b64encode(latest[1]),
    });
  }
  await tell({
    t: "group_update",
    group: groupId,
    revision: group.revision,
    action: "state",
    targets: [],
  });
}
