/**
 * "Link a new device" on the Devices screen: this browser approves another device of the
 * account, as `porch devices link URI` does (net/link_approve.ts; docs/protocol.md section 7,
 * "Linking a device", step 2). The user pastes the porch://link address the new device shows
 * (a new browser, or `porch link` on a terminal) or, where the page can open a camera, scans
 * its QR code (ui/scan_button.ts); then checks the new device's name and key check and
 * confirms. The new device finishes by itself; `onLinked` lets the list show it.
 */

import { ClientError } from "../core/errors";
import type { ProvisioningUri } from "../crypto/provisioning";
import { approveLink, keyCheck, parseLinkUri } from "../net/link_approve";
import type { OpenProfile } from "../net/profile";
import type { IdbStore } from "../store/idb";
import { h } from "./dom";
import { sentence } from "./message_media";
import { scanPart } from "./scan_button";
import "./link_approve.css";

export function linkNewDevicePart(
  profile: OpenProfile,
  store: IdbStore,
  onLinked: () => void,
): HTMLElement {
  const input = h("input", {
    id: "link-new-uri",
    class: "link-uri",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "porch://link?…",
  });
  const status = h("p", { class: "notice", role: "status" });
  const error = h("p", { class: "error", role: "alert" });
  const confirmBox = h("div", { class: "link-confirm" });

  const ask = (uri: ProvisioningUri) => {
    const name = uri.name ?? "unnamed";
    const cancel = h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => {
          confirmBox.replaceChildren();
          status.textContent = "Nothing was linked.";
          input.focus();
        },
      },
      "Cancel",
    );
    const yes = h(
      "button",
      {
        type: "button",
        onclick: () => {
          yes.disabled = true;
          cancel.disabled = true;
          status.textContent = "Sending your account's keys…";
          approveLink(profile.api, store, profile.config, uri)
            .then(() => {
              confirmBox.replaceChildren();
              input.value = "";
              status.textContent = `Sent your account's keys to “${name}”; it finishes linking by itself.`;
              profile.core.ownDevicesChanged();
              onLinked();
            })
            .catch((exc: unknown) => {
              yes.disabled = false;
              cancel.disabled = false;
              status.textContent = "Nothing was linked.";
              error.textContent =
                exc instanceof ClientError
                  ? sentence(exc.message)
                  : "The new device could not be linked; try again.";
            });
        },
      },
      "Link this device",
    );
    confirmBox.replaceChildren(
      h(
        "div",
        { class: "card confirm", role: "group", "aria-labelledby": "link-confirm-title" },
        h("p", { id: "link-confirm-title" }, `Link a new device “${name}”?`),
        h(
          "p",
          {},
          "This gives it your account's keys: it can read and send your messages. Check that " +
            "the new device shows this key check: ",
          h("strong", { class: "key-check" }, keyCheck(uri)),
          ".",
        ),
        h("div", { class: "actions" }, yes, cancel),
      ),
    );
    yes.focus();
  };

  const check = () => {
    error.textContent = "";
    status.textContent = "";
    confirmBox.replaceChildren();
    try {
      ask(parseLinkUri(input.value));
    } catch (exc) {
      error.textContent =
        exc instanceof ClientError ? sentence(exc.message) : "That address could not be read.";
    }
  };

  const scan = scanPart({
    field: input,
    videoLabel: "Camera view for scanning the QR code",
    looking: "Point the camera at the new device's QR code.",
    instead: "paste the link address instead",
    read: ({ text }) => (text.startsWith("porch://link") ? text : null),
    wrong:
      "That QR code is not a link address; point the camera at the QR code the new device shows.",
    found: check,
    status,
    error,
  });

  return h(
    "form",
    {
      class: "link-new",
      "aria-labelledby": "link-new-title",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        check();
      },
    },
    h("h2", { id: "link-new-title" }, "Link a new device"),
    h(
      "p",
      { class: "hint" },
      "On the new device choose “Link to an existing account” (or run ",
      h("code", {}, "porch link"),
      scan
        ? " on a terminal), then paste the link address it shows here or scan its QR code."
        : " on a terminal), then paste the link address it shows here.",
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "link-new-uri" }, "Link address of the new device"),
      input,
    ),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Check"), scan?.button),
    scan?.video,
    confirmBox,
    status,
    error,
  );
}
