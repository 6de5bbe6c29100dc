/**
 * A group's settings and its invite link from the browser (mirrors
 * src/porch/client/groups.py `set_settings` and `revoke_invite`; docs/protocol.md, "Groups").
 *
 * The settings live twice, as create writes them: the server's copy (`PUT .../settings`,
 * admins only), which the server enforces, and the sealed state's (docs/protocol.md, "Sealed
 * group state"), which members open with the name. A change goes to the server first, then
 * into the state sealed for the next revision (net/groups.ts `#sealed`, which tells the
 * members one `settings` update); this device's own notice line says what it set. A device
 * without the state key changes the server's copy only and says so with the update.
 */

import { ClientError, ServerError } from "../core/errors";
import { type GroupNotice, settingsNotice } from "../core/group_notices";
import type { ServerGroup } from "../core/group_sync";
import type { LocalGroup } from "../core/types";
import type { Encodable } from "../crypto/content";
import type { GroupSettings, GroupState } from "../crypto/group_state";
import type { GroupApi } from "./group_api";

/** What net/groups.ts lends the changes kept here (its private steps). */
export interface GroupSteps {
  api(): GroupApi;
  me(): string;
  current(groupId: string): Promise<ServerGroup>;
  stored(group: ServerGroup): Promise<void>;
  tell(groupId: string, content: Encodable): Promise<void>;
  notice(groupId: string, revision: number, notice: GroupNotice): Promise<void>;
  retry(
    groupId: string,
    known: ServerGroup,
    call: (g: ServerGroup) => Promise<ServerGroup>,
  ): Promise<ServerGroup>;
  sealed(
    groupId: string,
    known: ServerGroup,
    change: (base: GroupState) => GroupState,
    action: "state" | "settings",
  ): Promise<ServerGroup>;
  local(groupId: string): Promise<LocalGroup | null>;
}

const NOT_ADMIN =
  "you are not an admin of this group any more, so you cannot change its settings; ask an admin";

/** New settings (admins only; what `change` leaves out stays as it is). */
export async function setGroupSettings(
  steps: GroupSteps,
  groupId: string,
  change: Partial<GroupSettings>,
): Promise<void> {
  const me = steps.me();
  const known = await steps.current(groupId);
  if (known.members.find((m) => m.account === me)?.role !== "admin")
    throw new ClientError(NOT_ADMIN, "forbidden");
  const before = (await steps.local(groupId))?.state?.settings ?? known.settings;
  const wanted = (g: ServerGroup): GroupSettings => ({ ...g.settings, ...change });
  let group = known;
  if (!sameSettings(wanted(known), known.settings))
    group = await explained(
      steps.retry(groupId, known, (g) => steps.api().putSettings(groupId, g.revision, wanted(g))),
      NOT_ADMIN,
    );
  await steps.stored(group);
  const now = group.settings;
  const local = await steps.local(groupId);
  if (local?.state && !sameSettings(local.state.settings, now))
    group = await explained(
      steps.sealed(groupId, group, (s) => ({ ...s, settings: now }), "settings"),
      NOT_ADMIN,
    );
  else if (group.revision !== known.revision)
    await steps.tell(groupId, {
      t: "group_update",
      group: groupId,
      revision: group.revision,
      action: "settings",
      targets: [],
    });
  else return; // nothing changed: nothing to tell
  await steps.notice(groupId, group.revision, settingsNotice(me, before, now));
}

/** Turn the invite link off: whoever has it can no longer join (`not_found`). */
export async function revokeGroupInvite(steps: GroupSteps, groupId: string): Promise<void> {
  await explained(
    steps.api().revokeInvite(groupId),
    "only admins can turn this group's invite link off: its settings do not let members edit it; ask an admin",
  );
  await steps.current(groupId);
}

const sameSettings = (a: GroupSettings, b: GroupSettings) =>
  a.membersCanEdit === b.membersCanEdit && a.joinApproval === b.joinApproval;

/** `work`, with the server's terse refusals in sentences that say what to do. */
export async function explained<T>(work: Promise<T>, forbidden: string): Promise<T> {
  try {
    return await work;
  } catch (exc) {
    if (!(exc instanceof ServerError)) throw exc;
    if (exc.code === "forbidden") throw new ClientError(forbidden, "forbidden");
    if (exc.code === "revision_conflict")
      throw new ClientError(
        "the group changed while this was being saved; refresh the page and try again",
        "revision_conflict",
      );
    throw exc;
  }
}
