/**
 * The app's top bar (split out of ./app): the brand, the connection state as a live status, and
 * the "Settings" and "Devices" buttons, in that order at the bar's end.
 */

import type { ConnectionState } from "../net/runner";
import { h } from "./dom";

const STATE_TEXT: Record<ConnectionState | "elsewhere", string> = {
  elsewhere: "Connected in another tab",
  connecting: "Connecting…",
  online: "Online",
  offline: "Offline — reconnecting",
  ended: "Disconnected",
};

export interface HeaderHandlers {
  settings(): void;
  devices(): void;
}

/** Fill root with the top bar and then main; returns the connection status element. */
export function mountHeader(
  root: HTMLElement,
  main: HTMLElement,
  handlers: HeaderHandlers,
): HTMLElement {
  const status = h(
    "p",
    { id: "connection", role: "status", "data-state": "elsewhere" },
    STATE_TEXT.elsewhere,
  );
  const settings = h(
    "button",
    { type: "button", class: "secondary", id: "open-settings", onclick: () => handlers.settings() },
    "Settings",
  );
  // wlink: "Devices" in the header, beside what else the header's end holds (./devices).
  const devices = h(
    "button",
    { type: "button", class: "secondary", id: "open-devices", onclick: () => handlers.devices() },
    "Devices",
  );
  root.replaceChildren(
    h(
      "header",
      { class: "top" },
      h("span", { class: "brand" }, "Porch"),
      h("div", { class: "top-end" }, status, settings, devices),
    ),
    main,
  );
  return status;
}

export function showState(status: HTMLElement, state: ConnectionState, detail: string): void {
  status.dataset.state = state;
  status.textContent =
    state === "ended" && detail ? `${STATE_TEXT.ended}: ${detail}` : STATE_TEXT[state];
}
