/**
 * The app shell: the connection state, the conversation list and the open chat. It owns the
 * runner and turns the core's events into re-renders; every core call goes through
 * `runner.serial` (one at a time, as the core expects).
 */

import type { Event as CoreEvent } from "../core/events";
import { ClientError } from "../core/errors";
import { verification } from "../core/verified";
import type { Conversation } from "../core/types";
import type { ConnectionState } from "../net/runner";
import { Runner } from "../net/runner";
import { type OpenProfile, normalizePhone, openProfile, wsUrl } from "../net/profile";
import { Tabs } from "../net/tabs";
import type { Action } from "../core/actions";
import type { IdbStore } from "../store/idb";
import { ChatView } from "./chat";
import { ContactView } from "./contact";
import { field, h, time } from "./dom";
import { SettingsView } from "./settings";
import {
  type AppParts,
  contactHandlers,
  pushControl,
  saveUsername,
  signOutBrowser,
} from "./settings_app";
import { view } from "./views";

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
    const settings = h(
      "button",
      {
        type: "button",
        class: "secondary",
        id: "open-settings",
        onclick: () => void this.showSettings(),
      },
      "Settings",
    );
    root.replaceChildren(
      h(
        "header",
        { class: "top" },
        h("span", { class: "brand" }, "Porch"),
        h("div", { class: "top-end" }, this.#status, settings),
      ),
      this.#main,
    );
    this.runner = this.#makeRunner(profile);
    this.#tabs = new Tabs(`porch:${profile.config.accountId}.${profile.config.deviceId}`);
    this.#tabs.onMessage((message) => {
      if (message.type === "wake" && this.#leader) this.runner.wakeOutbox();
      if (message.type === "changed") void this.#refresh();
      if (message.type === "signedout") {
        this.store.close(); // so the signing-out tab can delete the database
        location.reload();
      }
    });
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
    if (chat && (event.type === "IdentityChanged" || event.type === "SendFailedEvent"))
      await this.#warnIfChanged(chat, await this.#label(chat.peer));
    if (
      event.type === "Message" &&
      !(await this.store.contact(event.sender))?.label.startsWith("@")
    ) {
      await this.#learnLabel(event.sender);
    }
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

  // The chat -----------------------------------------------------------------------------

  async openChat(peer: string): Promise<void> {
    const label = await this.#label(peer);
    const chat = new ChatView(peer, label, {
      back: () => void this.showList(),
      info: () => void this.showContact(peer),
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
    await this.#warnIfChanged(chat, label);
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

  // Contact info and settings (./contact, ./settings) ---------------------------------------

  /** The chat's warning while a verified contact's key is another one (core/verified.ts). */
  async #warnIfChanged(chat: ChatView, label: string): Promise<void> {
    const changed = verification(await this.store.contact(chat.peer)) === "verified_key_changed";
    chat.showWarning(
      changed
        ? `${label}'s safety number changed since you verified it: open Info to compare or accept it. Until then, what you send them is not sent.`
        : null,
    );
  }

  get #parts(): AppParts {
    return {
      profile: this.profile,
      store: this.store,
      runner: () => this.runner,
      perform: (actions) => this.#perform(actions),
    };
  }

  async showContact(peer: string): Promise<void> {
    const back = () => void this.openChat(peer);
    const contact = new ContactView(
      peer,
      await this.#label(peer),
      contactHandlers(this.#parts, peer, back),
    );
    this.#chat = null;
    this.#list = null;
    this.#main.replaceChildren(contact.el);
    contact.focus();
    await contact.load();
  }

  async showSettings(): Promise<void> {
    const parts = this.#parts;
    const devices = view("devices");
    const settings: SettingsView = new SettingsView({
      back: () => void this.showList(),
      api: this.profile.api,
      labelOf: (id) => this.#label(id),
      usernameChanged: (name) => saveUsername(parts, name),
      push: pushControl(parts),
      openDevices: devices
        ? () =>
            void Promise.resolve(
              devices({
                profile: this.profile,
                store: this.store,
                back: () => void this.showSettings(),
              }),
            ).then((v) => {
              this.#main.replaceChildren(v.el);
              v.focus();
            })
        : null,
      signOut: async () => {
        await signOutBrowser(parts, () => this.#tabs.post({ type: "signedout" }));
        location.reload();
      },
    });
    this.#chat = null;
    this.#list = null;
    this.#main.replaceChildren(settings.el);
    settings.focus();
    await settings.load();
  }
}
