/**
 * The chat view: history with delivered/read ticks, the typing indicator, and the composer.
 * Enter sends, Shift+Enter starts a new line; Escape goes back to the list.
 */

import type { StoredMessage } from "../core/types";
import { describeSeconds } from "../core/rich";
import { Composer } from "./composer";
import { h } from "./dom";
import { type BubbleContext, messageItem } from "./message";
import type { RichChat } from "./message_actions";
import { sentence } from "./message_media";
import { ClientError } from "../core/errors";
import { TypingLine } from "./typing";

export { TYPING_SHOWN_MS } from "./typing";
export { TYPING_REPEAT_MS } from "./composer";
// The disappearing-message timers offered (seconds; 0 is off), as the SDK describes them.
export const TIMER_CHOICES = [0, 30, 300, 3600, 86400, 604800];

export interface ChatHandlers {
  back(): void;
  /** Opens the info screen: a group's panel (ui/groups.ts) in a group chat, else the contact
   * info screen (ui/contact.ts); no button without it. */
  info?(): void;
  send(body: string): Promise<void>;
  typing(started: boolean): void;
  rich?: RichChat; // replies, reactions, edits, deletes, timers, attachments (wmedia)
  timer?: TimerControl; // the disappearing timer, when not the 1:1 one of `rich` (a group's)
}

/** A conversation's disappearing timer (ui/group_live.ts for a group's). */
export interface TimerControl {
  setTimer(seconds: number): Promise<void>;
  timer(): Promise<number>;
  /** Delete what expired; true when something went. */
  sweep(): Promise<boolean>;
}

export class ChatView {
  readonly el: HTMLElement;
  readonly #log: HTMLOListElement;
  readonly #scroller: HTMLElement; // role=log around the list: an <ol> keeps its list role
  readonly #typing: TypingLine;
  readonly #composer: Composer;
  readonly #timer: HTMLSelectElement | null = null;
  readonly #notice: HTMLElement;
  readonly #warning: HTMLElement;
  #expiryTimer: ReturnType<typeof setTimeout> | null = null;
  #history: StoredMessage[] = [];
  #menuOpen: string | null = null;
  #names: ((account: string) => string) | null = null; // a group's member labels
  #held: ReadonlySet<string> = new Set(); // outgoing messages paused (core/outbox_paused.ts)

  constructor(
    readonly peer: string,
    private readonly label: string,
    private readonly handlers: ChatHandlers,
  ) {
    this.#log = h("ol", {});
    this.#scroller = h(
      "div",
      { class: "messages", role: "log", "aria-label": `Messages with ${label}`, tabindex: 0 },
      this.#log,
    );
    const typing = h("p", { class: "typing", "aria-live": "polite" });
    this.#typing = new TypingLine(typing);
    this.#notice = h("p", { class: "error chat-error", role: "alert" });
    this.#warning = h("p", { class: "warning chat-warning", role: "alert", hidden: true });
    const richChat = handlers.rich;
    const composerHandlers = {
      send: (body: string, reply: StoredMessage | null) =>
        richChat ? richChat.send(body, reply) : handlers.send(body),
      typing: (started: boolean) => handlers.typing(started),
      ...(richChat && {
        sendFiles: richChat.sendFiles.bind(richChat),
        edit: richChat.edit.bind(richChat),
      }),
    };
    this.#composer = new Composer(composerHandlers);
    // A group's timer lives in its sealed state (its settings: handlers.timer), never in the
    // 1:1 rich handler's.
    const timer = handlers.timer ?? (peer.startsWith("g:") ? undefined : richChat);
    if (timer) {
      this.#timer = h(
        "select",
        {
          id: "timer",
          onchange: () => void this.#guard(() => timer.setTimer(Number(this.#timer!.value))),
        },
        ...TIMER_CHOICES.map((s) => h("option", { value: s }, s ? describeSeconds(s) : "Off")),
      );
      void timer.timer().then((s) => this.showTimer(s));
    }
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
        this.#timer &&
          h(
            "div",
            { class: "timer" },
            h("label", { for: "timer" }, "Disappearing messages"),
            this.#timer,
          ),
        handlers.info &&
          (peer.startsWith("g:")
            ? h(
                "button",
                { type: "button", class: "info", onclick: () => handlers.info?.() },
                "Group info",
              )
            : h(
                "button",
                {
                  type: "button",
                  class: "secondary info",
                  "aria-label": `Contact info for ${label}`,
                  onclick: () => handlers.info?.(),
                },
                "Info",
              )),
      ),
      this.#warning,
      this.#notice,
      this.#scroller,
      typing,
      this.#composer.el,
    );
    this.#composer.acceptDrops(this.el);
  }

  focus(): void {
    this.#composer.focus();
  }

  async #guard(fn: () => Promise<void>): Promise<void> {
    this.#notice.textContent = "";
    try {
      await fn();
    } catch (exc) {
      this.#notice.textContent =
        exc instanceof ClientError ? sentence(exc.message) : "That did not work; try again.";
    }
  }

  #context(): BubbleContext {
    const rich = this.handlers.rich;
    const me = rich?.me ?? "";
    // A group's rows name their sender: a quote's original is the one by the quoted author.
    const keyOf = (outgoing: boolean, author: string | undefined, id: string) =>
      `${outgoing ? 1 : 0}|${outgoing ? "" : (author ?? "")}|${id}`;
    const group = this.peer.startsWith("g:");
    const byKey = new Map(this.#history.map((m) => [keyOf(m.outgoing, m.author, m.clientId), m]));
    const names = this.#names;
    const nameOf = (m: StoredMessage) =>
      m.outgoing ? "yourself" : names && m.author ? names(m.author) : this.label;
    return {
      me,
      peerLabel: this.label,
      ...(names && { label: names }),
      original: (author, id) => byKey.get(keyOf(author === me, group ? author : undefined, id)),
      now: Date.now(),
      media: rich?.media ?? null,
      menuOpen: this.#menuOpen,
      setMenu: (id) => (this.#menuOpen = id),
      held: this.#held,
      actions: rich
        ? {
            reply: (m) => this.#composer.replyTo(m, nameOf(m), rich.preview(m)),
            react: (m, emoji) => void this.#guard(() => rich.react(m, emoji)),
            edit: (m) => this.#composer.startEdit(m),
            remove: (m) => void this.#guard(() => rich.remove(m)),
          }
        : null,
    };
  }

  /** Timer changed elsewhere (the peer set it): show it. */
  showTimer(seconds: number): void {
    const select = this.#timer;
    if (!select) return;
    // Another client may choose a value this one does not offer: show it all the same.
    if (![...select.options].some((o) => o.value === String(seconds)))
      select.append(h("option", { value: seconds }, describeSeconds(seconds)));
    select.value = String(seconds);
  }

  /** `author` names the sender of a group message (null: no label, as in a 1:1 chat);
   * `names` gives a group member's label for quotes and reactions; `held` the outgoing ones
   * paused until a changed safety number is compared or accepted. */
  render(
    history: StoredMessage[],
    author: (m: StoredMessage) => string | null = () => null,
    names: ((account: string) => string) | null = null,
    held: ReadonlySet<string> = new Set(),
  ): void {
    this.#names = names;
    this.#held = held;
    const box = this.#scroller;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const now = Date.now();
    // A disappearing message is gone from the screen when its time comes, sweep or not.
    this.#history = history.filter((m) => m.expiresAt === undefined || m.expiresAt > now);
    const ctx = this.#context();
    // A re-render replaces the bubbles: keep the focus on the same control of the same one.
    const active = document.activeElement;
    const focused = active?.closest("li.message")?.getAttribute("data-id");
    const control = active?.classList[0];
    this.#log.replaceChildren(
      ...this.#history.map((m) => {
        const item = messageItem(m, ctx);
        const name = m.outgoing ? null : author(m);
        if (name) item.prepend(h("p", { class: "author" }, name));
        return item;
      }),
    );
    if (focused) {
      const li = this.#log.querySelector<HTMLElement>(`li[data-id="${CSS.escape(focused)}"]`);
      const again =
        (control && li?.querySelector<HTMLElement>(`.${CSS.escape(control)}`)) ||
        li?.querySelector<HTMLElement>(".save, .more");
      again?.focus();
    }
    const ids = new Set(
      this.#history.flatMap((m) => (m.extra?.attachments ?? []).map((a) => a.id)),
    );
    this.handlers.rich?.media.keepOnly(ids);
    if (atBottom || history.at(-1)?.outgoing) box.scrollTop = box.scrollHeight;
    this.#scheduleExpiry();
  }

  #scheduleExpiry(): void {
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    const next = Math.min(...this.#history.map((m) => m.expiresAt ?? Infinity));
    const rich = this.handlers.timer ?? this.handlers.rich;
    if (!rich || next === Infinity) return;
    this.#expiryTimer = setTimeout(
      () => void rich.sweep(),
      Math.min(Math.max(next - Date.now(), 0) + 50, 2 ** 31 - 1),
    );
  }

  close(): void {
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    this.handlers.rich?.media.dispose();
  }

  /** A warning above the history (a verified contact's changed safety number); null hides it. */
  showWarning(text: string | null): void {
    this.#warning.textContent = text ?? "";
    this.#warning.hidden = text === null;
  }

  /** `sender` (a group member; the peer in a 1:1 chat) started or stopped typing; "" clears. */
  showTyping(started: boolean, label: string, sender: string = this.peer): void {
    this.#typing.set(sender, started, label);
  }
}
