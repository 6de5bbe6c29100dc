/**
 * "Linked devices": the account's devices as the server lists them (GET /v1/devices), this
 * one marked, and removing another one the way `porch devices remove ID` does: revoke it, then
 * publish the signed device list without it (net/link.ts `removeDevice`). Removal asks once
 * more on the same button, so no browser dialog is needed. "Link a new device" approves
 * another device as `porch devices link URI` does (./link_approve.ts).
 */

import { ClientError } from "../core/errors";
import type { AccountDevice } from "../net/http";
import { removeDevice } from "../net/link";
import type { OpenProfile } from "../net/profile";
import type { IdbStore } from "../store/idb";
import { h } from "./dom";
import { linkNewDevicePart } from "./link_approve";
import { registerView } from "./views";

const WATCH_EVERY_MS = 2000; // after an approval, until the new device shows (or WATCH_TIMES)
const WATCH_TIMES = 30;

export class DevicesView {
  readonly el: HTMLElement;
  readonly #list: HTMLElement;
  readonly #error: HTMLElement;
  #count = 0;
  #ids: string | null = null;
  #watch: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly profile: OpenProfile,
    private readonly store: IdbStore,
    back: () => void,
  ) {
    this.#list = h("div", { class: "devices-body" }, h("p", { class: "empty" }, "Loading…"));
    this.#error = h("p", { class: "error", role: "alert" });
    this.el = h(
      "section",
      { class: "devices", "aria-labelledby": "devices-title" },
      h(
        "div",
        { class: "bar" },
        h("button", { type: "button", class: "back", onclick: back }, "← Chats"),
        h("h1", { id: "devices-title" }, "Linked devices"),
      ),
      this.#list,
      this.#error,
      linkNewDevicePart(profile, store, () => this.#watchForNew()),
    );
  }

  /** The new device links itself within seconds of the approval: look until it is listed. */
  #watchForNew(): void {
    if (this.#watch !== null) clearInterval(this.#watch);
    const before = this.#count;
    let times = 0;
    this.#watch = setInterval(() => {
      if (++times > WATCH_TIMES || this.#count > before) {
        clearInterval(this.#watch!);
        this.#watch = null;
        return;
      }
      void this.refresh();
    }, WATCH_EVERY_MS);
  }

  focus(): void {
    this.el.querySelector<HTMLElement>("button")?.focus();
  }

  async refresh(): Promise<void> {
    let devices: AccountDevice[];
    try {
      devices = await this.profile.api.devices();
    } catch (exc) {
      this.#error.textContent =
        exc instanceof ClientError ? exc.message : "The device list could not be loaded.";
      return;
    }
    this.#error.textContent = "";
    // A device linked (or removed) since this browser last listed its own: the next sent
    // copy lists them again, so a new device gets copies of what this one sends.
    const ids = devices.map((d) => d.deviceId).join(",");
    if (this.#ids !== null && ids !== this.#ids) this.profile.core.ownDevicesChanged();
    this.#ids = ids;
    this.#count = devices.length;
    this.#list.replaceChildren(
      h(
        "ul",
        { class: "device-list", "aria-label": "Devices" },
        ...devices.map((d) => this.#item(d)),
      ),
    );
  }

  #item(d: AccountDevice): HTMLElement {
    const me = d.deviceId === this.profile.config.deviceId;
    const name = d.name || "Unnamed device";
    const created = d.created ? new Date(d.created).toLocaleDateString() : "";
    return h(
      "li",
      { class: "device", "data-device": d.deviceId, "aria-current": me ? "true" : undefined },
      h("span", { class: "name" }, name),
      h(
        "span",
        { class: "meta" },
        `Device ${d.deviceId}`,
        me && h("strong", { class: "this" }, " · this device"),
        created && ` · added ${created}`,
        !d.hasKeys && " · not set up yet (no keys)",
      ),
      !me && this.#removeButton(d.deviceId, name),
    );
  }

  #removeButton(deviceId: number, name: string): HTMLElement {
    let armed = false;
    const button = h(
      "button",
      {
        type: "button",
        class: "secondary",
        "aria-label": `Remove ${name} (device ${deviceId})`,
        onclick: () => {
          if (!armed) {
            armed = true;
            button.textContent = "Confirm removal";
            button.setAttribute("aria-label", `Confirm removal of ${name} (device ${deviceId})`);
            return;
          }
          button.disabled = true;
          this.#error.textContent = "";
          const { api, config } = this.profile;
          removeDevice(api, this.store, config, deviceId)
            .then(() => this.refresh())
            .catch((exc: unknown) => {
              button.disabled = false;
              this.#error.textContent =
                exc instanceof ClientError ? exc.message : "The device could not be removed.";
            });
        },
      },
      "Remove",
    );
    return button;
  }
}

// The Settings screen (ui/settings.ts) opens this one by name, without importing it.
registerView("devices", ({ profile, store, back }) => {
  const view = new DevicesView(profile, store, back);
  void view.refresh();
  return view;
});
