/**
 * The group's settings in the info panel (what `porch group settings` does): two labelled
 * checkboxes, "Members can edit the group info" (members_can_edit) and "Admins approve new
 * members" (join_approval). Admins change them (net/group_settings.ts); everyone else sees
 * them read-only (disabled, with a sentence saying who may change them), as the server lets
 * only admins. "Turn off invite link" is beside the link (./group_admin).
 */

import type { LocalGroup } from "../core/types";
import type { GroupSettings } from "../crypto/group_state";
import { h } from "./dom";
import { errorText, liveError } from "./group_admin";

export interface GroupSettingsHandlers {
  setSettings(change: Partial<GroupSettings>): Promise<void>;
}

const FAILED = "The settings could not be changed; try again.";

function checkbox(
  id: string,
  label: string,
  checked: boolean,
  editable: boolean,
  error: HTMLElement,
  change: (checked: boolean) => Promise<void>,
): HTMLElement {
  const box = h("input", { type: "checkbox", id, disabled: !editable });
  box.checked = checked;
  box.addEventListener("change", () => {
    const wanted = box.checked;
    error.textContent = "";
    box.disabled = true;
    change(wanted)
      .catch((exc: unknown) => {
        box.checked = !wanted; // as it still is
        liveError(error).textContent = errorText(exc, FAILED);
      })
      .finally(() => (box.disabled = false));
  });
  return h("div", { class: "check" }, box, h("label", { for: id }, label));
}

export function settingsSection(
  group: LocalGroup,
  admin: boolean,
  handlers: GroupSettingsHandlers,
  error: HTMLElement,
): HTMLElement {
  const s = group.settings;
  return h(
    "section",
    { class: "group-settings", "aria-labelledby": "group-settings-title" },
    h("h2", { id: "group-settings-title" }, "Settings"),
    checkbox(
      "group-members-can-edit",
      "Members can edit the group info",
      s.membersCanEdit,
      admin,
      error,
      (membersCanEdit) => handlers.setSettings({ membersCanEdit }),
    ),
    checkbox(
      "group-join-approval",
      "Admins approve new members",
      s.joinApproval,
      admin,
      error,
      (joinApproval) => handlers.setSettings({ joinApproval }),
    ),
    h(
      "p",
      { class: "hint", id: "group-settings-hint" },
      admin
        ? "Without member editing, only admins rename the group, add or remove people and make invite links."
        : "Only admins change these settings.",
    ),
  );
}
