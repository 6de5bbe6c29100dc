/** A small element builder: the screens are plain DOM, no framework (issue 9 allows none). */

import { ClientError } from "../core/errors";

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | boolean | number | ((ev: Event) => void) | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.replace(/^on/, ""), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

/** A labelled input: the label names it for screen readers and for tests alike. */
export function field(label: string, input: HTMLInputElement | HTMLTextAreaElement): HTMLElement {
  const id = input.id || `f-${label.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

export function time(ts: number): string {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** One step of a flow as a form: Enter submits; a ClientError shows as its sentence. */
export function form(
  title: string,
  submit: string,
  fields: HTMLElement[],
  onSubmit: () => Promise<void>,
): HTMLElement {
  const error = h("p", { class: "error", role: "alert" });
  const button = h("button", { type: "submit" }, submit);
  const el = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "step-title",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        error.textContent = "";
        button.disabled = true;
        onSubmit()
          .catch((exc: unknown) => {
            error.textContent =
              exc instanceof ClientError ? exc.message : "Something went wrong; try again.";
          })
          .finally(() => {
            button.disabled = false;
          });
      },
    },
    h("h1", { id: "step-title" }, title),
    ...fields,
    button,
    error,
  );
  return el;
}
