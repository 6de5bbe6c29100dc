/** Group test helpers shared by the group core tests (group_live, group_rich). */
import type { Action } from "../../src/core/actions";
import type { ServerGroup } from "../../src/core/group_sync";
import { DEFAULT_SETTINGS, type GroupState, sealGroupState } from "../../src/crypto/group_state";
import { loadOlm } from "../../src/crypto/olm_raw";
import { b64decode } from "../../src/protocol/codec";
import { makePeer, type Peer } from "./helpers";

export const of = <T extends Action["type"]>(actions: Action[], type: T) =>
  actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);

/** A peer whose core takes groups. */
export async function groupPeer(id: string): Promise<Peer> {
  const peer = await makePeer(id);
  peer.core.enableGroups(await loadOlm(), new Uint8Array(32).fill(5));
  return peer;
}

export const STATE: GroupState = {
  name: "Climbers",
  description: "",
  avatar: null,
  timerSeconds: 0,
  settings: DEFAULT_SETTINGS,
};

/** Group `gid` as the server answers it, `creator` its admin, its state sealed under the
 * creator's current key (a first one made when it has none). */
export async function serverGroup(
  gid: string,
  creator: Peer,
  members: string[],
  revision = 1,
  state: GroupState = STATE,
): Promise<ServerGroup> {
  const latest = await creator.store.latestStateKey(gid);
  let epoch: number, bytes: Uint8Array;
  if (latest) [epoch, bytes] = latest;
  else {
    const key = await creator.core.groups!.crypto.newStateKey(gid);
    [epoch, bytes] = [key.epoch, b64decode(key.key)];
  }
  return {
    id: gid,
    revision,
    state: await sealGroupState(bytes, gid, revision, epoch, state),
    stateRevision: revision,
    settings: DEFAULT_SETTINGS,
    members: [
      { account: creator.accountId, role: "admin" },
      ...members.map((a) => ({ account: a, role: "member" as const })),
    ],
    pending: [],
    invite: false,
  };
}
