/**
 * The app shell: which screen is shown (the conversation list, a chat, a group's info, a
 * contact, settings, devices). It owns the runner and turns the core's events into re-renders;
 * every core call goes through `runner.serial` (one at a time, as the core expects). The top bar
 * is ./header, the list's DOM ./conversation_list, account names ./labels.
 */

import type { Event as CoreEvent, MessageEvent } from "../core/events";
import { verification } from "../core/verified";
import { Runner } from "../net/runner";
import { type OpenProfile, openProfile, wsUrl } from "../net/profile";
import { Tabs } from "../net/tabs";
import type { Action } from "../core/actions";
import { DevicesView } from "./devices";
import type { IdbStore } from "../store/idb";
import { Groups } from "../net/groups";
import { ChatView } from "./chat";
import { groupInfoView, newGroupView, resolveMember } from "./groups";
import {
  type GroupScreens,
  groupInfoHandlers,
  infoKey,
  inviteLink,
  keepTyped,
  newGroupHandlers,
  noticeAccounts,
  withNotices,
} from "./group_screens";
import { h } from "./dom";
import { listScreen, renderConversations } from "./conversation_list";
import { Labels } from "./labels";
import { mountHeader, showState } from "./header";
import { richChat } from "./message_actions";
import { groupTimerControl } from "./group_live";
import { expireNow } from "../core/rich_send";

export const EXPIRE_EVERY_MS = 30_000; // the disappearing-message sweep (rich.py EXPIRE_EVERY)
import { ContactView } from "./contact";
import { SettingsView } from "./settings";
import {
  type AppParts,
  contactHandlers,
  pushControl,
  saveUsername,
  signOutBrowser,
} from "./settings_app";
import { view } from "./views";

export class App {
  runner: Runner; // inert (never started) until this tab holds the connection (./tabs)
  #leader = false;
  readonly #tabs: Tabs;
  readonly #status: HTMLElement;
  readonly #main: HTMLElement;
  #chat: ChatView | null = null;
  #list: HTMLElement | null = null; // the list's container while the list is shown
  readonly #labels: Labels;
  readonly #groups: Groups;
  #info: string | null = null; // the group whose info panel is shown
  #infoShows = ""; // what that panel shows (infoKey): a re-render of the same is skipped

  constructor(
    root: HTMLElement,
    private readonly store: IdbStore,
    private readonly profile: OpenProfile,
  ) {
    this.#main = h("div", { class: "screen" });
    this.#labels = new Labels(store, profile);
    this.#status = mountHeader(root, this.#main, {
      settings: () => void this.showSettings(),
      devices: () => this.showDevices(),
    });
    this.runner = this.#makeRunner(profile);
    this.#groups = new Groups(
      () => this.runner,
      (actions) => this.#perform(actions),
    );
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
      (state, detail) => showState(this.#status, state, detail),
    );
  }

  start(): void {
    void this.showList();
    // Disappearing messages go from IndexedDB on time, whichever chat is open (wmedia).
    setInterval(() => void this.#sweep(), EXPIRE_EVERY_MS);
    void this.#sweep();
    this.#tabs.whenLeader(async () => {
      // The Olm state as the last leader left it (this tab's may be stale); views share it.
      const fresh = await openProfile(this.store);
      if (!fresh) return;
      this.runner = this.#makeRunner(Object.assign(this.profile, { core: fresh.core }));
      this.#leader = true;
      this.runner.start();
      // Changes made while this device was away (group_changed hints are online only).
      this.#groups.refresh().then(
        () => this.#refresh(),
        () => undefined,
      );
    });
  }

  /** Carry out actions; a tab without the connection asks the leader to send. */
  #perform(actions: Action[]): void {
    this.runner.perform(actions);
    if (!this.#leader && actions.some((a) => a.type === "WakeOutbox"))
      this.#tabs.post({ type: "wake" });
    this.#tabs.post({ type: "changed" });
  }

  async #sweep(): Promise<void> {
    const runner = this.runner;
    const gone = await runner.serial(() => expireNow(runner.core.state));
    if (gone.length) await this.#refresh();
  }

  async #refresh(): Promise<void> {
    if (this.#info) await this.showGroupInfo(this.#info, true);
    else if (this.#chat) await this.#refreshChat();
    else await this.#refreshList();
  }

  async #onEvent(event: CoreEvent): Promise<void> {
    const chat = this.#chat;
    if (event.type === "TypingEvent") {
      if (chat && chat.peer === (event.group ? `g:${event.group}` : event.sender))
        chat.showTyping(event.started, await this.#labels.label(event.sender), event.sender);
      return;
    }
    const from = event.type === "Message" && (event.group ? `g:${event.group}` : event.sender);
    if (from && chat?.peer === from) chat.showTyping(false, "", (event as MessageEvent).sender);
    if (event.type === "TimerChanged" && chat?.peer === event.peer) chat.showTimer(event.seconds);
    const warn = ["IdentityChanged", "SendFailedEvent", "SendPausedEvent"].includes(event.type);
    if (chat && warn) await this.#warnIfChanged(chat, await this.#labels.label(chat.peer));
    if (
      event.type === "Message" &&
      !(await this.store.contact(event.sender))?.label.startsWith("@")
    ) {
      await this.#labels.learn(event.sender);
    }
    // A group member heard from only by a reaction is named as the server shows it too.
    if (event.type === "ReactionChanged") await this.#labels.learn(event.reactor);
    // wlink: a sent copy (from another of this account's devices) names its chat's peer `to`.
    if (event.type === "Message" && event.outgoing && event.to) await this.#labels.learn(event.to);
    await this.#refresh();
    this.#tabs.post({ type: "changed" });
  }

  // The conversation list --------------------------------------------------------------------

  async showList(): Promise<void> {
    this.#chat?.close();
    this.#chat = null;
    this.#info = null;
    const screen = listScreen({
      start: (raw) => this.#startChat(raw),
      newGroup: () => this.showNewGroup(),
    });
    this.#list = screen.list;
    this.#main.replaceChildren(screen.el);
    await this.#refreshList();
    screen.target.focus();
  }

  /** Only the list itself: what the user is typing into "Start a chat with" stays. */
  async #refreshList(): Promise<void> {
    const container = this.#list;
    if (!container || this.#chat) return;
    const conversations = await this.store.conversations();
    const me = this.profile.config.accountId;
    renderConversations(container, conversations, me, (peer) => void this.openChat(peer));
  }

  async #startChat(raw: string): Promise<void> {
    const accountId = await resolveMember(this.profile.api, this.store, raw);
    await this.openChat(accountId);
  }

  /** Leave the shown screen; the chat's media object URLs and expiry timer go with it. */
  #leave(): void {
    this.#chat?.close();
    this.#chat = null;
    this.#list = null;
    this.#info = null;
  }

  // Linked devices (./devices) ----------------------------------------------------------------

  showDevices(): void {
    this.#chat?.close(); // its media object URLs and expiry timer go with it
    this.#chat = null;
    this.#list = null;
    const view = new DevicesView(this.profile, this.store, () => void this.showList());
    this.#main.replaceChildren(view.el);
    view.focus();
    void view.refresh();
  }

  // The chat -----------------------------------------------------------------------------

  async openChat(peer: string): Promise<void> {
    this.#info = null;
    const group = peer.startsWith("g:") ? peer.slice(2) : null;
    const label = group ? await this.#groupLabel(group) : await this.#labels.label(peer);
    const chat = new ChatView(peer, label, {
      // Rich messages (./message_actions) in both; the info screen is the group's or the
      // contact's; a group's timer is in its settings (./group_live).
      info: () => void (group ? this.showGroupInfo(group) : this.showContact(peer)),
      rich: richChat({
        peer,
        runner: () => this.runner,
        api: this.profile.api,
        perform: (actions) => this.#perform(actions),
        changed: () => void this.#refreshChat(),
      }),
      ...(group && {
        timer: groupTimerControl(group, this.#groups.api, this.#parts, () => this.#refreshChat()),
      }),
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
    await this.#warnIfChanged(chat, label);
    await this.#refreshChat();
    chat.focus();
  }

  async #refreshChat(): Promise<void> {
    const chat = this.#chat;
    if (!chat) return;
    const history = await this.store.history(chat.peer);
    const reactors = history.flatMap((m) => Object.keys(m.extra?.reactions ?? {}));
    for (const a of new Set([...history.flatMap((m) => m.author ?? []), ...reactors]))
      if (!this.#labels.has(a)) await this.#labels.remember(a);
    const me = this.profile.config.accountId;
    await this.#labels.learnAll(noticeAccounts(history, me)); // group notices name them (./group_screens)
    const name = (a: string) => this.#labels.cached(a) ?? a.slice(0, 8);
    const names = chat.peer.startsWith("g:") ? name : null;
    let held = new Set(await this.store.pausedIds(chat.peer)); // core/outbox_paused.ts
    if (held.size) {
      // Accepted in another tab while this one paused a text: it goes now.
      const runner = this.runner;
      const resumed = await runner.serial(() => runner.core.resumeIfAccepted(chat.peer));
      if (resumed.length) {
        this.#perform(resumed); // only then: it tells the other tabs, which refresh too
        held = new Set(await this.store.pausedIds(chat.peer));
      }
    }
    chat.render(
      withNotices(history, this.#screens.label, me),
      (m) => (m.author ? name(m.author) : null),
      names,
      held,
    );
    // Shown on screen, so read: mark and tell the sender (a read receipt).
    const unread = history
      .filter((m) => !m.outgoing && m.unread && m.status === "received")
      .map((m) => m.clientId);
    if (unread.length && document.visibilityState !== "hidden") {
      const runner = this.runner;
      this.#perform(await runner.serial(() => runner.core.markRead(chat.peer, unread)));
    }
  }

  // Groups (ui/groups.ts) ------------------------------------------------------------------

  async #groupLabel(groupId: string): Promise<string> {
    const group = await this.store.group(groupId);
    return group?.state?.name || `Group ${groupId.slice(0, 8)}`;
  }

  get #screens(): GroupScreens {
    return {
      api: this.profile.api,
      store: this.store,
      groups: this.#groups,
      label: (account) => this.#labels.cached(account) ?? account.slice(0, 8),
      shown: () => this.#info,
      showInfo: (groupId) => this.showGroupInfo(groupId, true),
      openChat: (peer) => this.openChat(peer),
      showList: () => this.showList(),
    };
  }

  showNewGroup(): void {
    this.#leave();
    this.#main.replaceChildren(newGroupView(newGroupHandlers(this.#screens)));
  }

  async showGroupInfo(groupId: string, again = false): Promise<void> {
    const group = await this.store.group(groupId);
    if (!group) return this.openChat(`g:${groupId}`);
    // Members never heard from are named as the server shows them (a bounded few at a time).
    await this.#labels.learnAll([...group.members.map((m) => m.accountId), ...group.pending]);
    if (again && this.#info !== groupId) return; // a re-render; they went elsewhere meanwhile
    const link = inviteLink(groupId);
    const shows = infoKey(group, link, (account) => this.#labels.cached(account));
    // Receipts and messages re-render this panel too. Replacing it with the same content
    // would drop a click whose mouseup lands on the new button, so only a change renders.
    if (again && shows === this.#infoShows) return;
    const focused = document.activeElement?.id;
    const restore = this.#info === groupId ? keepTyped(this.#main) : () => undefined;
    this.#leave();
    this.#info = groupId;
    this.#infoShows = shows;
    const handlers = groupInfoHandlers(this.#screens, groupId);
    const me = this.profile.config.accountId;
    this.#main.replaceChildren(groupInfoView(group, me, handlers, link));
    restore();
    // A re-render keeps the keyboard where it was.
    // (A control that went, like "Turn it off", leaves the keyboard at the back button.)
    const target = focused ? document.getElementById(focused) : null;
    (target ?? this.#main.querySelector<HTMLElement>("button.back"))?.focus();
  }

  // Contact info and settings (./contact, ./settings) ---------------------------------------

  /** The chat's warning while a verified contact's key is another one (core/verified.ts). */
  async #warnIfChanged(chat: ChatView, label: string): Promise<void> {
    const changed = verification(await this.store.contact(chat.peer)) === "verified_key_changed";
    chat.showWarning(
      changed
        ? `${label}'s safety number changed since you verified it: open Info to compare or accept it. Until then, what you send them waits here and is sent once you do.`
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
      await this.#labels.label(peer),
      contactHandlers(this.#parts, peer, back),
    );
    this.#leave();
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
      labelOf: (id) => this.#labels.label(id),
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
      signOut: async (localOnly) => {
        await signOutBrowser(parts, () => this.#tabs.post({ type: "signedout" }), localOnly);
        location.reload();
      },
    });
    this.#leave();
    this.#main.replaceChildren(settings.el);
    settings.focus();
    await settings.load();
  }
}
