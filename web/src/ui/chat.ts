/**
 * The chat view: history with delivered/read ticks, the typing indicator, and the composer.
 * Enter sends, Shift+Enter starts a new line; Escape goes back to the list.
 */

import type { MessageStatus, StoredMessage } from "../core/types";
import { h, time } from "./dom";

const TICKS: Partial<Record<MessageStatus, [string, string]>> = {
  queued: ["🕓", "waiting to send"],
  sent: ["✓", "sent"],
  delivered: ["✓✓", "delivered"],
  read: ["✓✓", "read"],
  failed: ["!", "not sent"],
};
export const TYPING_SHOWN_MS = 6_000;
export const TYPING_REPEAT_MS = 3_000;

export interface ChatHandlers {
  back(): void;
  /** Opens the contact info screen (ui/contact.ts); no button without it. */
  info?(): void;
  send(body: string): Promise<void>;
  typing(started: boolean): void;
}

export class ChatView {
  readonly el: HTMLElement;
  readonly #log: HTMLOListElement;
  readonly #scroller: HTMLElement; // role=log around the list: an <ol> keeps its list role
  readonly #typing: HTMLElement;
  readonly #input: HTMLTextAreaElement;
  readonly #warning: HTMLElement;
  #typingTimer: ReturnType<typeof setTimeout> | null = null;
  #typingSent = 0;

  constructor(
    readonly peer: string,
    label: string,
    private readonly handlers: ChatHandlers,
  ) {
    this.#log = h("ol", {});
    this.#scroller = h(
      "div",
      { class: "messages", role: "log", "aria-label": `Messages with ${label}`, tabindex: 0 },
      this.#log,
    );
    this.#typing = h("p", { class: "typing", "aria-live": "polite" });
    this.#warning = h("p", { class: "warning chat-warning", role: "alert", hidden: true });
    this.#input = h("textarea", { id: "composer", rows: 1, maxlength: 16000, required: true });
    const sendButton = h("button", { type: "submit" }, "Send");
    const composer = h(
      "form",
      { class: "composer", onsubmit: (ev: Event) => (ev.preventDefault(), void this.#send()) },
      h("label", { for: "composer", class: "visually-hidden" }, "Message"),
      this.#input,
      sendButton,
    );
    this.#input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        void this.#send();
      }
    });
    this.#input.addEventListener("input", () => {
      const now = Date.now();
      if (this.#input.value && now - this.#typingSent > TYPING_REPEAT_MS) {
        this.#typingSent = now;
        handlers.typing(true);
      }
    });
    this.el = h(
      "section",
      {
        class: "chat",
        "aria-labelledby": "chat-title",
        onkeydown: (ev: Event) => (ev as KeyboardEvent).key === "Escape" && handlers.back(),
      },
      h(
        "header",
        { class: "bar" },
        h("button", { type: "button", class: "back", onclick: () => handlers.back() }, "← Chats"),
        h("h1", { id: "chat-title" }, label),
        handlers.info &&
          h(
            "button",
            {
              type: "button",
              class: "secondary info",
              "aria-label": `Contact info for ${label}`,
              onclick: () => handlers.info?.(),
            },
            "Info",
          ),
      ),
      this.#warning,
      this.#scroller,
      this.#typing,
      composer,
    );
  }

  focus(): void {
    this.#input.focus();
  }

  async #send(): Promise<void> {
    const body = this.#input.value;
    if (!body.trim()) return;
    this.#input.value = "";
    this.#typingSent = 0;
    this.handlers.typing(false);
    await this.handlers.send(body);
  }

  render(history: StoredMessage[]): void {
    const box = this.#scroller;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    this.#log.replaceChildren(...history.map(messageItem));
    if (atBottom || history.at(-1)?.outgoing) box.scrollTop = box.scrollHeight;
  }

  /** A warning above the history (a verified contact's changed safety number); null hides it. */
  showWarning(text: string | null): void {
    this.#warning.textContent = text ?? "";
    this.#warning.hidden = text === null;
  }

  showTyping(started: boolean, label: string): void {
    if (this.#typingTimer) clearTimeout(this.#typingTimer);
    this.#typing.textContent = started ? `${label} is typing…` : "";
    if (started) {
      // A lost "stopped" must not leave the indicator on for ever.
      this.#typingTimer = setTimeout(() => (this.#typing.textContent = ""), TYPING_SHOWN_MS);
    }
  }
}

function messageItem(m: StoredMessage): HTMLElement {
  const tick = m.outgoing ? TICKS[m.status] : undefined;
  return h(
    "li",
    {
      class: `message ${m.outgoing ? "out" : "in"} ${m.status}`,
      "data-status": m.status,
      "data-id": m.clientId,
    },
    h("p", { class: "body" }, m.body),
    h(
      "p",
      { class: "meta" },
      h("time", { datetime: new Date(m.ts).toISOString() }, time(m.ts)),
      tick &&
        h("span", { class: `tick ${m.status}`, "aria-label": tick[1], title: tick[1] }, tick[0]),
    ),
  );
}
