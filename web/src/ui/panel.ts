/**
 * A full-screen panel (contact info, settings): a bar with a back button and the title, a
 * scrolling body, Escape to go back. Also the one way these screens word a failure.
 */

import { ClientError } from "../core/errors";
import { h } from "./dom";

export interface Panel {
  el: HTMLElement;
  back: HTMLButtonElement; // focused when the panel opens
}

export function panel(
  kind: string,
  title: string,
  backText: string,
  back: () => void,
  ...body: Node[]
): Panel {
  const button = h("button", { type: "button", class: "back", onclick: () => back() }, backText);
  const el = h(
    "section",
    {
      class: `panel ${kind}`,
      "aria-labelledby": `${kind}-title`,
      onkeydown: (ev: Event) => (ev as KeyboardEvent).key === "Escape" && back(),
    },
    h("header", { class: "bar" }, button, h("h1", { id: `${kind}-title` }, title)),
    h("div", { class: "panel-body" }, ...body),
  );
  return { el, back: button };
}

/** A part of a panel's body under its own heading. */
export function part(id: string, title: string, ...children: (Node | null)[]): HTMLElement {
  return h(
    "section",
    { class: "panel-part", "aria-labelledby": id },
    h("h2", { id }, title),
    ...children,
  );
}

/** What to show for a failure: the client's own sentence, else `fallback` (never a trace). */
export function problem(exc: unknown, fallback: string): string {
  if (exc instanceof ClientError) return exc.message;
  if (exc instanceof DOMException && exc.name === "NotAllowedError")
    return "The browser did not allow that.";
  return fallback;
}
