/**
 * The admin parts of the group info panel (issue 9; what `porch group promote|demote|rename|
 * invite|approve|deny` do): role buttons beside a member, the rename form, the invite link
 * (text, Copy, and a QR code drawn by ./qr, loaded when first shown), and the join requests with Approve and Deny.
 * Only admins get the role and request controls, as only they may use them (the server
 * refuses the rest all the same, and its refusal is shown as a sentence). "Join by link" is
 * on the New group screen.
 */

import { ClientError } from "../core/errors";
import type { GroupMemberRow, LocalGroup } from "../core/types";
import { field, h } from "./dom";
import { sentence } from "./message_media";
import { scanPart } from "./scan_button";

export interface GroupAdminHandlers {
  setRole(account: string, role: "admin" | "member"): Promise<void>;
  rename(name: string): Promise<void>;
  invite(): Promise<void>;
  revokeInvite(): Promise<void>;
  answer(account: string, approve: boolean): Promise<void>;
}

export function errorText(exc: unknown, fallback: string): string {
  return exc instanceof ClientError ? sentence(exc.message) : fallback;
}

/** The panel's error line as it is on screen now: an event may have drawn the panel again
 * while the work ran (the refetch before a change does), leaving `error` detached. */
export function liveError(error: HTMLElement): HTMLElement {
  if (error.isConnected || !error.id) return error;
  return document.getElementById(error.id) ?? error;
}

/** Run `work` from a control: it is busy meanwhile, a failure is shown in `error`. */
export function guarded(button: HTMLButtonElement, error: HTMLElement, fallback: string) {
  return (work: () => Promise<void>) => {
    error.textContent = "";
    button.disabled = true;
    work()
      .catch((exc: unknown) => (liveError(error).textContent = errorText(exc, fallback)))
      .finally(() => (button.disabled = false));
  };
}

function button(
  text: string,
  attrs: Record<string, string>,
  error: HTMLElement,
  fallback: string,
  work: () => Promise<void>,
): HTMLButtonElement {
  const b = h("button", { type: "button", ...attrs }, text);
  b.addEventListener("click", () => guarded(b, error, fallback)(work));
  return b;
}

/** "Make admin" / "Remove as admin" for one member (an admin's view; not for oneself). */
export function roleButton(
  m: GroupMemberRow,
  name: string,
  handlers: GroupAdminHandlers,
  error: HTMLElement,
): HTMLButtonElement {
  const promote = m.role !== "admin";
  return button(
    promote ? "Make admin" : "Remove as admin",
    {
      class: promote ? "promote secondary" : "demote secondary",
      // The visible words first: a spoken command matches the name (axe label-content).
      "aria-label": promote ? `Make admin: ${name}` : `Remove as admin: ${name}`,
    },
    error,
    "That role could not be changed; try again.",
    () => handlers.setRole(m.accountId, promote ? "admin" : "member"),
  );
}

export function renameForm(
  group: LocalGroup,
  handlers: GroupAdminHandlers,
  error: HTMLElement,
): HTMLElement {
  const input = h("input", {
    id: "group-rename",
    required: true,
    maxlength: 128,
    autocomplete: "off",
  });
  input.value = group.state?.name ?? "";
  const save = h("button", { type: "submit" }, "Rename");
  return h(
    "form",
    {
      class: "group-rename",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        guarded(
          save,
          error,
          "The group could not be renamed; try again.",
        )(() => handlers.rename(input.value));
      },
    },
    field("Group name", input),
    save,
  );
}

/** The invite link part: a button that makes a new link (replacing the old), and the link
 * this device made last, as text with Copy and as a QR code. */
export function inviteSection(
  group: LocalGroup,
  link: string | null,
  handlers: GroupAdminHandlers,
  error: HTMLElement,
): HTMLElement {
  const make = button(
    link || group.invite ? "Make a new invite link" : "Make an invite link",
    { class: "invite-make secondary" },
    error,
    "The invite link could not be made; try again.",
    () => handlers.invite(),
  );
  const parts: Array<HTMLElement | SVGElement | null> = [
    h("h2", { id: "invite-title" }, "Invite link"),
    h(
      "p",
      { class: "hint" },
      group.settings.joinApproval
        ? "Whoever has the link can ask to join; an admin approves each request. A new link replaces the old one."
        : "Whoever has the link can join and read what is said from then on. A new link replaces the old one.",
    ),
    make,
    group.invite
      ? revokeControl(handlers, error)
      : h(
          "p",
          { class: "invite-none", id: "invite-none" },
          "No invite link: nobody can join by link now.",
        ),
  ];
  if (link && group.invite) {
    const text = h("input", {
      id: "invite-link",
      readonly: true,
      class: "invite-link",
      spellcheck: "false",
    });
    text.value = link;
    const copied = h("span", { class: "copied", "aria-live": "polite" });
    const copy = h(
      "button",
      {
        type: "button",
        class: "invite-copy secondary",
        onclick: () => {
          text.select();
          navigator.clipboard
            ?.writeText(link)
            .then(() => (copied.textContent = "Copied"))
            .catch(() => (copied.textContent = "Selected: copy it with Ctrl+C"));
        },
      },
      "Copy",
    );
    parts.push(
      field("The link (share it only with people who may join)", text),
      h("div", { class: "actions" }, copy, copied),
      lazyQr(link, "QR code of the group invite link: scan it to join"),
    );
  }
  return h("section", { class: "group-invite", "aria-labelledby": "invite-title" }, ...parts);
}

/** "Turn off invite link": asks first, in place (keyboard and screen reader alike). */
export function revokeControl(handlers: GroupAdminHandlers, error: HTMLElement): HTMLElement {
  const wrap = h("div", { class: "invite-revoke actions" });
  const ask = h(
    "button",
    { type: "button", class: "danger", id: "invite-revoke" },
    "Turn off invite link",
  );
  const question = h(
    "p",
    { id: "invite-revoke-question" },
    "Turn the invite link off? Whoever has it can no longer join; a new link can be made later.",
  );
  const yes = h(
    "button",
    { type: "button", class: "danger", id: "invite-revoke-yes" },
    "Turn it off",
  );
  const no = h("button", { type: "button", class: "secondary" }, "Keep it");
  const confirm = h(
    "div",
    { class: "confirm", role: "group", "aria-labelledby": "invite-revoke-question" },
    question,
    yes,
    no,
  );
  ask.addEventListener("click", () => {
    wrap.replaceChildren(confirm);
    yes.focus();
  });
  no.addEventListener("click", () => {
    wrap.replaceChildren(ask);
    ask.focus();
  });
  yes.addEventListener("click", () =>
    guarded(
      yes,
      error,
      "The invite link could not be turned off; try again.",
    )(() => handlers.revokeInvite()),
  );
  wrap.append(ask);
  return wrap;
}

/** Join requests waiting for an admin (the server lists them to admins only). */
export function requestsSection(
  group: LocalGroup,
  label: (account: string) => string,
  handlers: GroupAdminHandlers,
  error: HTMLElement,
): HTMLElement | null {
  if (!group.pending.length) return null;
  const rows = group.pending.map((account) => {
    const name = label(account);
    return h(
      "li",
      { class: "request", "data-account": account },
      h("span", { class: "name" }, name),
      button(
        "Approve",
        { class: "approve", "aria-label": `Approve ${name}` },
        error,
        "That request could not be answered; try again.",
        () => handlers.answer(account, true),
      ),
      button(
        "Deny",
        { class: "deny secondary", "aria-label": `Deny ${name}` },
        error,
        "That request could not be answered; try again.",
        () => handlers.answer(account, false),
      ),
    );
  });
  return h(
    "section",
    { class: "group-requests", "aria-labelledby": "requests-title" },
    h("h2", { id: "requests-title" }, `Asking to join (${group.pending.length})`),
    h("ul", { class: "requests", "aria-labelledby": "requests-title" }, ...rows),
  );
}

/** "Join by link" (the New group screen): a porch://group link, pasted or scanned from its QR
 * code (ui/scan_button.ts); joining waits for the Join press either way. */
export function joinForm(join: (link: string) => Promise<string | null>): HTMLElement {
  const input = h("input", {
    id: "group-join-link",
    required: true,
    placeholder: "porch://group?token=…",
    autocomplete: "off",
    spellcheck: "false",
  });
  const error = h("p", { class: "error", role: "alert" });
  const status = h("p", { class: "status", role: "status" });
  const submit = h("button", { type: "submit" }, "Join");
  const scan = scanPart({
    field: input,
    videoLabel: "Camera view for scanning the invite link's QR code",
    looking: "Point the camera at the invite link's QR code.",
    instead: "paste the invite link instead",
    read: ({ text }) => (text.startsWith("porch://group") ? text : null),
    wrong:
      "That QR code is not a group invite link; point the camera at the invite link's QR code.",
    found: () => {
      status.textContent = "Read the invite link; press Join to join the group.";
      submit.focus();
    },
    status,
    error,
  });
  return h(
    "form",
    {
      class: "group-join",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        status.textContent = "";
        guarded(
          submit,
          error,
          "That group could not be joined; try again.",
        )(async () => {
          status.textContent = (await join(input.value)) ?? "";
        });
      },
    },
    h("h2", {}, "Join by link"),
    field("Invite link", input),
    h("div", { class: "actions" }, submit, scan?.button),
    scan?.video,
    status,
    error,
  );
}

/** A `.qr` box the invite's code fills once ./qr has loaded: the encoder is a chunk of its own
 * (with the contact and link screens), not part of the app's first paint. */
function lazyQr(text: string, label: string): HTMLElement {
  const box = h("div", { class: "qr" });
  import("./qr").then(
    ({ renderQr }) => box.replaceChildren(renderQr(text, label)),
    () => (box.textContent = "The QR code could not be drawn; share the link above instead."),
  );
  return box;
}
