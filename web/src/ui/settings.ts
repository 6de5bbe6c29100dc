/**
 * The settings screen, opened from the shell header (mirrors `porch whoami`, `porch username`,
 * `porch block`/`unblock`): this profile's account and device, the username, discoverability
 * by phone number (docs/protocol.md, "Account"), the blocked accounts, notifications (Web
 * Push, ../sw/subscribe), a way to the linked devices when that view exists, and signing this
 * browser out. Each part loads and fails on its own; errors show next to the part.
 */

import {
  type AccountApi,
  type AccountInfo,
  accountInfo,
  blockedAccounts,
  normalizeUsername,
  setBlocked,
  setDiscoverable,
  setUsername,
} from "../net/account";
import { ClientError } from "../core/errors";
import { field, h } from "./dom";
import { panel, part, problem } from "./panel";

export type PushState = "on" | "off" | "denied" | "unsupported";

export interface PushControl {
  state(): Promise<PushState>;
  enable(): Promise<void>;
  disable(): Promise<void>;
}

export interface SettingsHandlers {
  back(): void;
  api: AccountApi;
  labelOf(accountId: string): Promise<string>;
  usernameChanged(username: string | null): Promise<void>;
  push: PushControl;
  /** Opens the `devices` view; null while no such view is registered (./views). */
  openDevices: (() => void) | null;
  /** Remove this device from the account, then delete the local profile; with `localOnly`,
   * only the latter (offered when the server kept the device: ClientError `sign_out_server`). */
  signOut(localOnly: boolean): Promise<void>;
}

const PUSH_TEXT: Record<PushState, string> = {
  on: "Notifications are on for this browser.",
  off: "Notifications are off.",
  denied: "This browser blocks notifications for Porch; allow them in its site settings.",
  unsupported: "This browser cannot show Porch notifications here.",
};

export class SettingsView {
  readonly el: HTMLElement;
  readonly #account: HTMLElement;
  readonly #blocked: HTMLElement;
  readonly #push: HTMLElement;
  readonly #back: HTMLButtonElement;

  constructor(private readonly handlers: SettingsHandlers) {
    this.#account = h("div", {});
    this.#blocked = h("div", {});
    this.#push = h("div", {});
    const shown = panel(
      "settings",
      "Settings",
      "← Chats",
      () => handlers.back(),
      this.#account,
      part("push-title", "Notifications", this.#push),
      part("blocked-title", "Blocked accounts", this.#blocked),
      part(
        "devices-title",
        "Linked devices",
        handlers.openDevices
          ? h(
              "button",
              { type: "button", class: "secondary", onclick: handlers.openDevices },
              "Linked devices",
            )
          : h("p", { class: "hint" }, "This browser cannot manage linked devices yet."),
      ),
      this.#signOutPart(),
    );
    this.el = shown.el;
    this.#back = shown.back;
  }

  focus(): void {
    this.#back.focus();
  }

  async load(): Promise<void> {
    await Promise.all([this.#loadAccount(), this.#loadBlocked(), this.#loadPush()]);
  }

  // This account ---------------------------------------------------------------------------

  async #loadAccount(): Promise<void> {
    try {
      this.#renderAccount(await accountInfo(this.handlers.api));
    } catch (exc) {
      this.#account.replaceChildren(
        part(
          "account-title",
          "Account",
          h("p", { class: "error", role: "alert" }, problem(exc, "The account could not be read.")),
        ),
      );
    }
  }

  #renderAccount(me: AccountInfo): void {
    const error = h("p", { class: "error", role: "alert" });
    const status = h("p", { class: "hint", role: "status" });
    const input = h("input", {
      id: "username",
      autocomplete: "username",
      maxlength: 40,
      placeholder: "none",
      value: me.username ?? "",
    });
    const save = (value: string | null, done: string) => {
      error.textContent = "";
      status.textContent = "";
      let name: string | null;
      try {
        name = value === null ? null : normalizeUsername(value);
      } catch (exc) {
        error.textContent = problem(exc, "That username cannot be used.");
        return;
      }
      setUsername(this.handlers.api, name)
        .then(async (kept) => {
          input.value = kept ?? "";
          await this.handlers.usernameChanged(kept);
          status.textContent = kept ? `${done} @${kept}.` : "Username removed.";
        })
        .catch((exc: unknown) => {
          error.textContent = problem(exc, "The username could not be changed; try again.");
        });
    };
    const username = h(
      "form",
      {
        class: "username",
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          save(input.value, "Your username is");
        },
      },
      field("Username", input),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit" }, "Save username"),
        h(
          "button",
          { type: "button", class: "secondary", onclick: () => save(null, "") },
          "Remove username",
        ),
      ),
      status,
      error,
    );
    const discoverError = h("p", { class: "error", role: "alert" });
    const discoverable = h("input", { type: "checkbox", id: "discoverable" });
    const discoverState = h("p", { class: "hint", role: "status" });
    const showDiscoverable = (on: boolean) => {
      discoverable.checked = on;
      discoverState.textContent = on
        ? "Others can find you by your number."
        : "Your number is hidden from lookups.";
    };
    showDiscoverable(me.discoverable);
    discoverable.addEventListener("change", () => {
      const want = discoverable.checked;
      discoverError.textContent = "";
      discoverable.disabled = true;
      setDiscoverable(this.handlers.api, want)
        .then(() => showDiscoverable(want))
        .catch((exc: unknown) => {
          showDiscoverable(!want);
          discoverError.textContent = problem(exc, "That could not be changed; try again.");
        })
        .finally(() => {
          discoverable.disabled = false;
          discoverable.focus();
        });
    });
    this.#account.replaceChildren(
      part(
        "account-title",
        "Account",
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Phone number"),
          h("dd", {}, me.phone),
          h("dt", {}, "Account id"),
          h("dd", {}, h("code", {}, me.accountId)),
          h("dt", {}, "This device"),
          h("dd", {}, `device ${me.deviceId}`),
        ),
        username,
        h(
          "div",
          { class: "check" },
          discoverable,
          h("label", { for: "discoverable" }, "People who have my number can find me by it"),
        ),
        discoverState,
        discoverError,
      ),
    );
  }

  // Blocked accounts -------------------------------------------------------------------------

  async #loadBlocked(focusAfter = false): Promise<void> {
    const error = h("p", { class: "error", role: "alert" });
    let ids: string[];
    try {
      ids = await blockedAccounts(this.handlers.api);
    } catch (exc) {
      error.textContent = problem(exc, "The blocked accounts could not be read.");
      this.#blocked.replaceChildren(error);
      return;
    }
    if (!ids.length) {
      this.#blocked.replaceChildren(
        h("p", { class: "hint", role: "status" }, "You have blocked no one."),
      );
      if (focusAfter) this.#back.focus();
      return;
    }
    const items = await Promise.all(
      ids.map(async (id) => {
        const label = await this.handlers.labelOf(id);
        const button = h(
          "button",
          {
            type: "button",
            class: "secondary",
            onclick: () => {
              button.disabled = true;
              setBlocked(this.handlers.api, id, false)
                .then(() => this.#loadBlocked(true))
                .catch((exc: unknown) => {
                  button.disabled = false;
                  error.textContent = problem(exc, "That did not work; try again.");
                });
            },
          },
          `Unblock ${label}`,
        );
        return h("li", { "data-account": id }, h("span", { class: "name" }, label), button);
      }),
    );
    this.#blocked.replaceChildren(
      h("ul", { class: "blocked", "aria-label": "Blocked accounts" }, ...items),
      error,
    );
    if (focusAfter) this.#blocked.querySelector<HTMLButtonElement>("button")?.focus();
  }

  // Notifications ----------------------------------------------------------------------------

  async #loadPush(message = ""): Promise<void> {
    const push = this.handlers.push;
    const state = await push.state().catch((): PushState => "unsupported");
    const error = h("p", { class: "error", role: "alert" }, message);
    const toggle = h("input", { type: "checkbox", id: "notifications" });
    toggle.checked = state === "on";
    toggle.disabled = state === "unsupported" || state === "denied";
    toggle.addEventListener("change", () => {
      toggle.disabled = true;
      (toggle.checked ? push.enable() : push.disable())
        .then(() => this.#loadPush())
        .catch((exc: unknown) =>
          this.#loadPush(problem(exc, "Notifications could not be changed here; try again.")),
        )
        .finally(() => document.getElementById("notifications")?.focus());
    });
    this.#push.replaceChildren(
      h(
        "div",
        { class: "check" },
        toggle,
        h("label", { for: "notifications" }, "Notify me of new messages when Porch is closed"),
      ),
      h("p", { class: "hint", role: "status" }, PUSH_TEXT[state]),
      error,
    );
  }

  // Sign out ---------------------------------------------------------------------------------

  #signOutPart(): HTMLElement {
    const box = h("div", {});
    const error = h("p", { class: "error", role: "alert" });
    const ask = (): void => {
      const yes = h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: () => {
            yes.disabled = true;
            local.hidden = true;
            error.textContent = "";
            this.handlers.signOut(false).catch((exc: unknown) => {
              yes.disabled = false;
              error.textContent = problem(exc, "This browser could not be signed out; try again.");
              // The server kept the device (unreachable, or it refused): offer the local part.
              local.hidden = !(exc instanceof ClientError && exc.code === "sign_out_server");
            });
          },
        },
        "Yes, sign out and delete",
      );
      const local: HTMLButtonElement = h(
        "button",
        {
          type: "button",
          class: "danger",
          hidden: true,
          onclick: () => {
            local.disabled = true;
            yes.disabled = true;
            this.handlers.signOut(true).catch((exc: unknown) => {
              local.disabled = false;
              yes.disabled = false;
              error.textContent = problem(exc, "This browser could not be signed out; try again.");
            });
          },
        },
        "Sign out here only",
      );
      const no = h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: () => {
            offer();
            box.querySelector("button")?.focus();
          },
        },
        "Cancel",
      );
      box.replaceChildren(
        h(
          "p",
          { class: "warning", role: "alert" },
          "Signing out removes this browser from your account and deletes this browser's " +
            "keys and messages. They cannot be brought back: this browser will have to " +
            "register or be linked again.",
        ),
        h("div", { class: "actions" }, yes, local, no),
        error,
      );
      no.focus();
    };
    const offer = (): void => {
      box.replaceChildren(
        h("button", { type: "button", class: "danger", onclick: ask }, "Sign out of this browser"),
      );
    };
    offer();
    return part("signout-title", "Sign out", box);
  }
}
