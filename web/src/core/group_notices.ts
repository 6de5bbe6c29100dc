/**
 * Group changes as system lines of the group's chat (issue 9; mirrors how
 * src/porch/client/group_view.py words them and how core/group_sync.py judges a claim).
 *
 * A `group_update` is only a claim by whoever sent it: it becomes a notice once the fetched
 * group bears it out (`plausible`, the same rules as the Python SDK's GroupSync). The notice
 * is a message row of `g:<group>` with status "notice"; who did what to whom is kept in the
 * row's sealed extras (`extra.notice`), so the line is worded again with the names known when
 * it is shown ("Dave joined by link" once Dave's @username is learned), and the row survives a
 * reload. Its key holds the group revision and a digest of the change, nothing readable.
 */

import type { GroupUpdate } from "../crypto/content";
import type { GroupAction } from "../crypto/content_checks";
import type { GroupSettings, GroupState } from "../crypto/group_state";
import { hexencode, utf8encode } from "../protocol/codec";
import type { ServerGroup } from "./group_sync";
import type { StoredMessage } from "./types";

export const MAX_NAMED_TARGETS = 5; // "Alice added Bob, Carol, ... and 12 others"
// What the server lets whom do (server/services/group_rules.py): admins only, or editors
// (admins, and members too when the group's settings say members_can_edit).
const ADMIN_ONLY = new Set<string>(["create", "promote", "demote", "settings"]);
const EDITORS = new Set<string>(["add", "remove", "state"]);

/** `deny` is this device's own (a refused join request is told to nobody). */
export type NoticeAction = GroupAction | "deny";

export interface GroupNotice {
  by: string; // "" when nobody said who did it (this account found itself removed)
  action: NoticeAction;
  targets: string[];
  name?: string; // the group's new name, for a rename
  what?: "description" | "details"; // a state change that was not a rename
  settings?: Partial<GroupSettings>; // a settings change: the settings it set
}

const roleOf = (group: ServerGroup, account: string) =>
  group.members.find((m) => m.account === account)?.role ?? null;

/** Whether the fetched `group` bears out `by`'s claim `update`. */
export function plausible(by: string, update: GroupUpdate, group: ServerGroup): boolean {
  const role = roleOf(group, by);
  if (update.revision > group.revision) return false;
  if (update.action === "leave") return role === null;
  if (role === null || (ADMIN_ONLY.has(update.action) && role !== "admin")) return false;
  if (EDITORS.has(update.action) && role !== "admin" && !group.settings.membersCanEdit)
    return false;
  if (update.revision < group.revision) return true; // changed since: the targets say nothing
  const where = update.targets.map((a) => roleOf(group, a));
  switch (update.action) {
    case "remove":
      return where.every((r) => r === null);
    case "promote":
      return where.every((r) => r === "admin");
    case "demote":
      return where.every((r) => r === "member");
    default:
      return true;
  }
}

/** A state change in words: a rename names the new name; a timer alone is not told here. */
export function stateNotice(
  by: string,
  old: GroupState | null,
  now: GroupState | null,
): GroupNotice | null {
  if (now && old?.name !== now.name) return { by, action: "state", targets: [], name: now.name };
  if (now && old && old.description !== now.description)
    return { by, action: "state", targets: [], what: "description" };
  if (now && old && old.timerSeconds !== now.timerSeconds) return null; // the timer's own line
  return { by, action: "state", targets: [], what: "details" };
}

/** A settings change in words: the settings that changed from `old` (all of them when the
 * settings before are not known, or seem unchanged). */
export function settingsNotice(
  by: string,
  old: GroupSettings | null,
  now: GroupSettings,
): GroupNotice {
  const changed: Partial<GroupSettings> = {};
  if (old?.membersCanEdit !== now.membersCanEdit) changed.membersCanEdit = now.membersCanEdit;
  if (old?.joinApproval !== now.joinApproval) changed.joinApproval = now.joinApproval;
  const settings = Object.keys(changed).length ? changed : { ...now };
  return { by, action: "settings", targets: [], settings };
}

function settingsWords(s: Partial<GroupSettings>): string {
  const parts: string[] = [];
  if (s.membersCanEdit !== undefined)
    parts.push(
      s.membersCanEdit ? "members can edit the group info" : "only admins edit the group info",
    );
  if (s.joinApproval !== undefined)
    parts.push(s.joinApproval ? "admins approve new members" : "new members join without approval");
  return parts.join(" and ");
}

function names(targets: readonly string[], label: (a: string) => string): string {
  const shown = targets.slice(0, MAX_NAMED_TARGETS).map(label);
  const rest = targets.length - shown.length;
  if (rest > 0) shown.push(`${rest} other${rest > 1 ? "s" : ""}`);
  if (shown.length <= 1) return shown.join("") || "nobody";
  return `${shown.slice(0, -1).join(", ")} and ${shown[shown.length - 1]}`;
}

/** One sentence; `label` names an account ("@bob", "+1415…"); this account is "you". */
export function describeNotice(n: GroupNotice, label: (a: string) => string, me: string): string {
  const name = (a: string) => (a === me ? "you" : label(a));
  const by = name(n.by);
  const whom = names(n.targets, name);
  let text: string;
  switch (n.action) {
    case "create":
      text = `${by} created the group${n.targets.length ? ` with ${whom}` : ""}`;
      break;
    case "add":
      text = `${by} added ${whom}`;
      break;
    case "remove":
      text = n.by ? `${by} removed ${whom}` : "You were removed from the group";
      break;
    case "leave":
      text = `${by} left`;
      break;
    case "join":
      text = `${by} joined by link`;
      break;
    case "promote":
      text = `${by} made ${whom} an admin`;
      break;
    case "demote":
      text = `${by} made ${whom} a member (no longer an admin)`;
      break;
    case "state":
      text =
        n.name !== undefined
          ? `${by} renamed the group to “${n.name}”`
          : `${by} changed the group's ${n.what === "description" ? "description" : "name or description"}`;
      break;
    case "settings": {
      const words = n.settings ? settingsWords(n.settings) : "";
      text = `${by} changed the group's settings${words ? `: ${words}` : ""}`;
      break;
    }
    case "deny":
      text = `${by} turned down ${whom}'s request to join`;
      break;
    default:
      text = `${by} changed the group`;
  }
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The row of a notice (added once: its key is the revision and a digest of the change). */
export async function noticeRow(
  groupId: string,
  revision: number,
  notice: GroupNotice,
  ts: number,
  label: (a: string) => string,
  me: string,
): Promise<StoredMessage> {
  const what = utf8encode(JSON.stringify([groupId, notice.by, notice.action, notice.targets]));
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", what));
  return {
    peer: `g:${groupId}`,
    clientId: `gn-${revision}-${hexencode(digest.slice(0, 6))}`,
    outgoing: false,
    device: 0,
    ts,
    body: describeNotice(notice, label, me),
    status: "notice",
    serverTs: ts,
    unread: false,
    extra: { notice },
  };
}

/** The notice of a sealed row read back (validated: a row is data, never trusted blindly). */
export function noticeFromObj(obj: unknown): GroupNotice | undefined {
  if (typeof obj !== "object" || obj === null) return undefined;
  const o = obj as Record<string, unknown>;
  const ok =
    typeof o.by === "string" &&
    typeof o.action === "string" &&
    Array.isArray(o.targets) &&
    o.targets.every((t) => typeof t === "string");
  if (!ok) return undefined;
  const notice: GroupNotice = {
    by: o.by as string,
    action: o.action as NoticeAction,
    targets: o.targets as string[],
  };
  if (typeof o.name === "string") notice.name = o.name;
  if (o.what === "description" || o.what === "details") notice.what = o.what;
  if (typeof o.settings === "object" && o.settings !== null) {
    const s = o.settings as Record<string, unknown>;
    const settings: Partial<GroupSettings> = {};
    if (typeof s.membersCanEdit === "boolean") settings.membersCanEdit = s.membersCanEdit;
    if (typeof s.joinApproval === "boolean") settings.joinApproval = s.joinApproval;
    notice.settings = settings;
  }
  return notice;
}
