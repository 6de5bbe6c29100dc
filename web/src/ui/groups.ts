/**
 * The group screens: "New group" (a name and members by phone number or @username) and the
 * group info panel (members with their roles; add, remove, leave). Plain forms and buttons,
 * so every control has a label and works from the keyboard; errors are announced (role
 * alert) in the words the server or client gave.
 */

import { ClientError } from "../core/errors";
import type { LocalGroup } from "../core/types";
import type { HttpApi } from "../net/http";
import { normalizePhone } from "../net/profile";
import type { IdbStore } from "../store/idb";
import { field, h } from "./dom";
import {
  type GroupAdminHandlers,
  guarded,
  inviteSection,
  joinForm,
  renameForm,
  requestsSection,
  roleButton,
} from "./group_admin";
import { type GroupSettingsHandlers, settingsSection } from "./group_settings";

export const MAX_MEMBERS_TYPED = 100; // names typed into one form

/** "@bob, +14155550100 @carol" -> ["@bob", "+14155550100", "@carol"]. */
export function parseMembers(text: string): string[] {
  const names = text
    .split(/[,;\n]+|\s+(?=[@+])/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length > MAX_MEMBERS_TYPED)
    throw new ClientError(`name at most ${MAX_MEMBERS_TYPED} people at once`, "usage");
  return [...new Set(names)];
}

/** The account of "@username" or a phone number; remembered as that contact's label. */
export async function resolveMember(api: HttpApi, store: IdbStore, raw: string): Promise<string> {
  let accountId: string;
  let label: string;
  if (raw.startsWith("@")) {
    label = raw.toLowerCase();
    accountId = await api.lookup({ username: label.slice(1) });
  } else {
    label = normalizePhone(raw);
    accountId = await api.lookup({ phone: label });
  }
  await store.setLabel(accountId, label);
  return accountId;
}

export function newGroupView(handlers: {
  cancel(): void;
  create(name: string, members: string[]): Promise<void>;
  join(link: string): Promise<string | null>; // a status sentence (e.g. waiting for approval)
}): HTMLElement {
  const name = h("input", {
    id: "group-name",
    required: true,
    maxlength: 128,
    autocomplete: "off",
  });
  const members = h("input", {
    id: "group-members",
    required: true,
    placeholder: "@bob, +14155550100",
    autocomplete: "off",
  });
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit" }, "Create group");
  const run = guarded(submit, error, "The group could not be created; try again.");
  const form = h(
    "form",
    {
      class: "new-group",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        run(() => handlers.create(name.value, parseMembers(members.value)));
      },
    },
    field("Group name", name),
    field("Members (phone numbers or @usernames, separated by commas)", members),
    h(
      "div",
      { class: "actions" },
      submit,
      h("button", { type: "button", onclick: () => handlers.cancel() }, "Cancel"),
    ),
    error,
  );
  const view = h(
    "section",
    {
      class: "group-new",
      "aria-labelledby": "new-group-title",
      onkeydown: (ev: Event) => (ev as KeyboardEvent).key === "Escape" && handlers.cancel(),
    },
    h("h1", { id: "new-group-title" }, "New group"),
    form,
    joinForm((link) => handlers.join(link)),
  );
  queueMicrotask(() => name.focus());
  return view;
}

export interface GroupInfoHandlers extends GroupAdminHandlers, GroupSettingsHandlers {
  back(): void;
  label(account: string): string;
  add(members: string[]): Promise<void>;
  remove(account: string): Promise<void>;
  leave(): Promise<void>;
}

export function groupInfoView(
  group: LocalGroup,
  me: string,
  handlers: GroupInfoHandlers,
  link: string | null = null, // the invite link this device made last (ui/group_admin.ts)
): HTMLElement {
  const title = group.state?.name || `Group ${group.groupId.slice(0, 8)}`;
  const member = group.members.some((m) => m.accountId === me);
  const admin = member && group.role === "admin";
  const mayEdit = member && (admin || group.settings.membersCanEdit);
  const error = h("p", { class: "error", role: "alert", id: "group-info-error" });
  const rows = [...group.members]
    .sort((a, b) => Number(b.accountId === me) - Number(a.accountId === me))
    .map((m) => {
      const name = m.accountId === me ? "You" : handlers.label(m.accountId);
      const canRemove =
        mayEdit && m.accountId !== me && !(m.role === "admin" && group.role !== "admin");
      const remove = h(
        "button",
        { type: "button", class: "remove", "aria-label": `Remove ${name} from the group` },
        "Remove",
      );
      remove.addEventListener("click", () =>
        guarded(
          remove,
          error,
          "That member could not be removed; try again.",
        )(() => handlers.remove(m.accountId)),
      );
      return h(
        "li",
        { class: "member", "data-account": m.accountId },
        h("span", { class: "name" }, name),
        h("span", { class: "role" }, m.role === "admin" ? "Admin" : "Member"),
        admin && m.accountId !== me && roleButton(m, name, handlers, error),
        canRemove && remove,
      );
    });
  const addInput = h("input", {
    id: "group-add",
    required: true,
    placeholder: "@dave",
    autocomplete: "off",
  });
  const addButton = h("button", { type: "submit" }, "Add");
  const add = h(
    "form",
    {
      class: "group-add",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        guarded(
          addButton,
          error,
          "Those members could not be added; try again.",
        )(async () => {
          await handlers.add(parseMembers(addInput.value));
          addInput.value = "";
        });
      },
    },
    field("Add members", addInput),
    addButton,
  );
  const leave = h("button", { type: "button", class: "leave danger" }, "Leave group");
  leave.addEventListener("click", () =>
    guarded(leave, error, "You could not leave the group; try again.")(() => handlers.leave()),
  );
  return h(
    "section",
    {
      class: "group-info",
      "aria-labelledby": "group-info-title",
      onkeydown: (ev: Event) => (ev as KeyboardEvent).key === "Escape" && handlers.back(),
    },
    h(
      "header",
      { class: "bar" },
      h("button", { type: "button", class: "back", onclick: () => handlers.back() }, "← Chat"),
      h("h1", { id: "group-info-title" }, title),
    ),
    h("h2", { id: "members-title" }, `Members (${group.members.length})`),
    h("ul", { class: "members", "aria-labelledby": "members-title" }, ...rows),
    member ? null : h("p", { class: "notice" }, "You are no longer a member of this group."),
    admin && requestsSection(group, handlers.label, handlers, error),
    mayEdit && add,
    mayEdit && renameForm(group, handlers, error),
    member && settingsSection(group, admin, handlers, error),
    mayEdit && inviteSection(group, link, handlers, error),
    member && leave,
    error,
  );
}
