/**
 * The app shell: the connection state, the conversation list and the open chat. It owns the
 * runner and turns the core's events into re-renders; every core call goes through
 * `runner.serial` (one at a time, as the core expects).
 */

import type { Event as CoreEvent } from "../core/events";
import { ClientError } from "../core/errors";
import type { Conversation } from "../core/types";
import type { ConnectionState } from "../net/runner";
import { Runner } from "../net/runner";
import { type OpenProfile, normalizePhone, openProfile, wsUrl } from "../net/profile";
import { Tabs } from "../net/tabs";
import type { Action } from "../core/actions";
import { DevicesView } from "./devices";
import type { IdbStore } from "../store/idb";
import { ChatView } from "./chat";
import { field, h, time } from "./dom";

const STATE_TEXT: Record<ConnectionState | "elsewhere", string> = {
  elsewhere: "Connected in another tab",
  connecting: "Connecting…",
  online: "Online",
  offline: "Offline — reconnecting",
  ended: "Disconnected",
};

export class App {
  runner: Runner; // inert (never started) until this tab holds the connection (./tabs)
  #leader = false;
  readonly #tabs: Tabs;
  readonly #status: HTMLElement;
  readonly #main: HTMLElement;
  #chat: ChatView | null = null;
  #list: HTMLElement | null = null; // the list's container while the list is shown
  #labels = new Map<string, string>();

  constructor(
    root: HTMLElement,
    private readonly store: IdbStore,
    private readonly profile: OpenProfile,
  ) {
    this.#status = h(
      "p",
      { id: "connection", role: "status", "data-state": "elsewhere" },
      STATE_TEXT.elsewhere,
    );
    this.#main = h("div", { class: "screen" });
    root.replaceChildren(
      h("header", { class: "top" }, h("span", { class: "brand" }, "Porch"), this.#status),
      this.#main,
    );
    this.runner = this.#makeRunner(profile);
    this.#tabs = new Tabs(`porch:${profile.config.accountId}.${profile.config.deviceId}`);
    this.#tabs.onMessage((message) => {
      if (message.type === "wake" && this.#leader) this.runner.wakeOutbox();
      if (message.type === "changed") void this.#refresh();
    });
    // wlink: "Devices" in the header, beside what else the header's end holds (./devices).
    const devices = h(
      "button",
      { type: "button", class: "secondary", id: "open-devices", onclick: () => this.showDevices() },
      "Devices",
    );
    (root.querySelector(".top-end") ?? root.querySelector("header"))?.append(devices);
  }

  #makeRunner(profile: OpenProfile): Runner {
    const { core, api, password, config } = profile;
    return new Runner(
      core,
      api,
      wsUrl(config.server),
      password,
      (event) => void this.#onEvent(event),
      (state, detail) => this.#onState(state, detail),
    );
  }

  start(): void {
    void this.showList();
    this.#tabs.whenLeader(async () => {
      // The Olm state as the last leader left it: this tab's copy may be stale.
      const fresh = await openProfile(this.store);
      if (!fresh) return;
      this.runner = this.#makeRunner(fresh);
      this.#leader = true;
      this.runner.start();
    });
  }

  /** Carry out actions; a tab without the connection asks the leader to send. */
  #perform(actions: Action[]): void {
    this.runner.perform(actions);
    if (!this.#leader && actions.some((a) => a.type === "WakeOutbox"))
      this.#tabs.post({ type: "wake" });
    this.#tabs.post({ type: "changed" });
  }

  async #refresh(): Promise<void> {
    if (this.#chat) await this.#refreshChat();
    else await this.#refreshList();
  }

  #onState(state: ConnectionState, detail: string): void {
    this.#status.dataset.state = state;
    this.#status.textContent =
      state === "ended" && detail ? `${STATE_TEXT.ended}: ${detail}` : STATE_TEXT[state];
  }

  async #onEvent(event: CoreEvent): Promise<void> {
    const chat = this.#chat;
    if (event.type === "TypingEvent") {
      if (chat?.peer === event.sender)
        chat.showTyping(event.started, await this.#label(event.sender));
      return;
    }
    if (event.type === "Message" && chat?.peer === event.sender) chat.showTyping(false, "");
    if (
      event.type === "Message" &&
      !(await this.store.contact(event.sender))?.label.startsWith("@")
    ) {
      await this.#learnLabel(event.sender);
    }
    // wlink: a sent copy (from another of this account's devices) names its chat's peer `to`.
    if (event.type === "Message" && event.outgoing && event.to) await this.#learnLabel(event.to);
    await this.#refresh();
    this.#tabs.post({ type: "changed" });
  }

  async #label(peer: string): Promise<string> {
    return this.#labels.get(peer) ?? (await this.store.contact(peer))?.label ?? peer.slice(0, 8);
  }

  /** An unknown sender is shown by the username or number the server gives for it. */
  async #learnLabel(peer: string): Promise<void> {
    const known = (await this.store.contact(peer))?.label;
    if (known && known !== peer.slice(0, 8)) return;
    try {
      const body = await this.profile.api.call(
        "GET",
        `/v1/accounts/${encodeURIComponent(peer)}/profile`,
      );
      const label = body?.username ? `@${body.username}` : body?.phone;
      if (typeof label === "string") await this.store.setLabel(peer, label);
    } catch {
      /* shown by its short id */
    }
  }

  // The conversation list --------------------------------------------------------------------

  async showList(): Promise<void> {
    this.#chat = null;
    const target = h("input", {
      id: "new-chat",
      required: true,
      placeholder: "+14155550100 or @username",
      autocomplete: "off",
    });
    const error = h("p", { class: "error", role: "alert" });
    const start = h(
      "form",
      {
        class: "new-chat",
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          error.textContent = "";
          this.#startChat(target.value.trim()).catch((exc: unknown) => {
            error.textContent =
              exc instanceof ClientError
                ? exc.message
                : "That chat could not be started; try again.";
          });
        },
      },
      field("Start a chat with", target),
      h("button", { type: "submit" }, "Start chat"),
      error,
    );
    this.#list = h("div", { class: "list-body" });
    this.#main.replaceChildren(
      h(
        "section",
        { class: "list", "aria-labelledby": "list-title" },
        h("h1", { id: "list-title" }, "Chats"),
        start,
        this.#list,
      ),
    );
    await this.#refreshList();
    target.focus();
  }

  /** Only the list itself: what the user is typing into "Start a chat with" stays. */
  async #refreshList(): Promise<void> {
    const container = this.#list;
    if (!container || this.#chat) return;
    const conversations = await this.store.conversations();
    container.replaceChildren(
      conversations.length
        ? h(
            "ul",
            { class: "conversations", "aria-label": "Conversations" },
            ...conversations.map((c) => this.#conversationItem(c)),
          )
        : h("p", { class: "empty" }, "No conversations yet."),
    );
  }

  #conversationItem(c: Conversation): HTMLElement {
    const preview = c.last ? `${c.last.outgoing ? "You: " : ""}${c.last.body}` : "";
    return h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: "conversation",
          "data-peer": c.peer,
          onclick: () => void this.openChat(c.peer),
        },
        h("span", { class: "name" }, c.label),
        h("span", { class: "preview" }, preview),
        c.last && h("time", {}, time(c.last.ts)),
        c.unread > 0 &&
          h("span", { class: "unread", "aria-label": `${c.unread} unread` }, String(c.unread)),
      ),
    );
  }

  async #startChat(raw: string): Promise<void> {
    const api = this.profile.api;
    let accountId: string;
    let label: string;
    if (raw.startsWith("@")) {
      label = raw.toLowerCase();
      accountId = await api.lookup({ username: label.slice(1) });
    } else {
      label = normalizePhone(raw);
      accountId = await api.lookup({ phone: label });
    }
    await this.store.setLabel(accountId, label);
    await this.openChat(accountId);
  }

  // Linked devices (./devices) ----------------------------------------------------------------

  showDevices(): void {
    this.#chat = null;
    this.#list = null;
    const view = new DevicesView(this.profile, this.store, () => void this.showList());
    this.#main.replaceChildren(view.el);
    view.focus();
    void view.refresh();
  }

  // The chat -----------------------------------------------------------------------------

  async openChat(peer: string): Promise<void> {
    const label = await this.#label(peer);
    const chat = new ChatView(peer, label, {
      back: () => void this.showList(),
      send: async (body) => {
        const runner = this.runner;
        const { actions } = await runner.serial(() => runner.core.sendText(peer, body));
        this.#perform(actions);
        await this.#refreshChat();
      },
      typing: (started) => {
        const runner = this.runner;
        if (!this.#leader) return; // online-only, and only the leader's Olm state is current
        void runner
          .serial(() => runner.core.typingFrame(peer, started))
          .then((f) => f && runner.sendNow(f));
      },
    });
    this.#chat = chat;
    this.#list = null;
    this.#main.replaceChildren(chat.el);
    await this.#refreshChat();
    chat.focus();
  }

  async #refreshChat(): Promise<void> {
    const chat = this.#chat;
    if (!chat) return;
    const history = await this.store.history(chat.peer);
    chat.render(history);
    // Shown on screen, so read: mark and tell the sender (a read receipt).
    const unread = history
      .filter((m) => !m.outgoing && m.unread && m.status === "received")
      .map((m) => m.clientId);
    if (unread.length && document.visibilityState !== "hidden") {
      const runner = this.runner;
      this.#perform(await runner.serial(() => runner.core.markRead(chat.peer, unread)));
    }
  }
}
