/**
 * "Link to an existing account": this browser becomes another device of an account that a
 * terminal already has (net/link.ts; docs/protocol.md section 7, "Linking a device"). It shows
 * the porch://link URI as a QR code and as text to copy, counts down the channel's ten minutes,
 * can be cancelled, and on approval (`porch devices link URI` on the terminal) starts as usual.
 */

import { ClientError } from "../core/errors";
import { MAX_LINK_NAME, type PendingLink, startLink } from "../net/link";
import { keyCheck, parseLinkUri } from "../net/link_approve";
import type { OpenProfile } from "../net/profile";
import type { IdbStore } from "../store/idb";
import { field, form, h } from "./dom";
import { renderQr } from "./qr";

const message = (exc: unknown) =>
  exc instanceof ClientError ? exc.message : "Linking failed; try again.";

/** "9:59": minutes and seconds left. */
export function countdown(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function linkScreen(
  root: HTMLElement,
  store: IdbStore,
  server: string,
  done: (profile: OpenProfile) => void,
  back: () => void,
): void {
  const nameInput = h("input", { autocomplete: "off", maxlength: MAX_LINK_NAME });
  nameInput.value = "browser";
  const intro = h(
    "p",
    {},
    "This browser becomes another device of your account. You approve it on a device that " +
      "already has the account, such as the terminal client.",
  );
  const step = form(
    "Link to an existing account",
    "Show link code",
    [intro, field("Device name", nameInput)],
    async () => waiting(await startLink(store, server, nameInput.value)),
  );
  const backButton = h("button", { type: "button", class: "secondary", onclick: back }, "Back");
  root.replaceChildren(step, h("p", { class: "alt" }, backButton));
  nameInput.focus();

  function waiting(pending: PendingLink): void {
    // The state is a live region; the countdown beside it is not (read every second, it would
    // drown everything else a screen reader says).
    const state = h("span", { id: "link-state", role: "status" }, "Waiting for approval…");
    const left = h("span", { id: "link-countdown" });
    const problem = h("p", { class: "error", role: "alert" });
    const uriInput = h("input", { readonly: true, class: "link-uri", spellcheck: "false" });
    uriInput.value = pending.uri;
    const copied = h("span", { class: "copied", "aria-live": "polite" });
    const copy = h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => {
          uriInput.select();
          navigator.clipboard
            ?.writeText(pending.uri)
            .then(() => {
              copied.textContent = "Copied";
            })
            .catch(() => {
              copied.textContent = "Selected: copy it with Ctrl+C";
            });
        },
      },
      "Copy",
    );
    let over = false;
    const tick = () => {
      if (!over) left.textContent = `${countdown(pending.deadline - Date.now())} left`;
    };
    const timer = setInterval(tick, 1000);
    const finish = () => {
      over = true;
      clearInterval(timer);
      left.textContent = "";
    };
    const cancel = h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => {
          pending.cancel();
          finish();
          linkScreen(root, store, server, done, back);
        },
      },
      "Cancel",
    );
    tick();
    root.replaceChildren(
      h(
        "section",
        { class: "card link", "aria-labelledby": "step-title" },
        h("h1", { id: "step-title" }, "Approve this browser on your other device"),
        h(
          "p",
          {},
          "On the terminal, run ",
          h("code", {}, "porch devices link"),
          " followed by this link address; in a browser that has the account, paste it in ",
          "Devices, “Link a new device”; or scan the code with a device that can.",
        ),
        h(
          "p",
          { class: "hint" },
          "Key check: ",
          h("strong", { class: "key-check" }, keyCheck(parseLinkUri(pending.uri))),
          ". The approving device shows the same before it approves.",
        ),
        renderQr(pending.uri, "QR code of the link address"),
        h("div", { class: "field" }, h("label", { for: "link-uri" }, "Link address"), uriInput),
        h("div", { class: "actions" }, copy, copied),
        h("p", { class: "link-wait" }, state, " ", left),
        h("div", { class: "actions" }, cancel),
        problem,
      ),
    );
    uriInput.id = "link-uri";
    uriInput.focus();
    pending
      .approved()
      .then((profile) => {
        finish();
        state.textContent = "Linked; starting…";
        done(profile);
      })
      .catch((exc: unknown) => {
        if (exc instanceof ClientError && exc.code === "cancelled") return;
        finish();
        state.textContent = "Not linked.";
        problem.textContent = message(exc);
        cancel.textContent = "Start again";
      });
  }
}
