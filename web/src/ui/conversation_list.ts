/**
 * The conversation list screen (split out of ./app): the "Start a chat with" form, the list of
 * conversations with their previews, and "New group". The app owns when it is shown and what
 * a click opens; this module only builds and re-renders the DOM.
 */

import { ClientError } from "../core/errors";
import type { Conversation } from "../core/types";
import { field, h, time } from "./dom";

/** The conversation with one's own account (its other devices get copies). */
export const NOTE_TO_SELF = "Note to self";

export interface ListHandlers {
  /** Open (or start) the chat with what was typed; a ClientError's message is shown. */
  start(raw: string): Promise<void>;
  newGroup(): void;
}

export interface ListScreen {
  el: HTMLElement;
  /** The list's container, re-rendered by renderConversations. */
  list: HTMLElement;
  /** "Start a chat with", focused once the list is shown. */
  target: HTMLInputElement;
}

export function listScreen(handlers: ListHandlers): ListScreen {
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
        handlers.start(target.value.trim()).catch((exc: unknown) => {
          error.textContent =
            exc instanceof ClientError ? exc.message : "That chat could not be started; try again.";
        });
      },
    },
    field("Start a chat with", target),
    h("button", { type: "submit" }, "Start chat"),
    error,
  );
  const list = h("div", { class: "list-body" });
  const el = h(
    "section",
    { class: "list", "aria-labelledby": "list-title" },
    h("h1", { id: "list-title" }, "Chats"),
    start,
    list,
    // After the list: keyboard order stays "Start chat", then the conversations.
    h(
      "button",
      { type: "button", class: "new-group-open", onclick: () => handlers.newGroup() },
      "New group",
    ),
  );
  return { el, list, target };
}

/** Only the list itself: what the user is typing into "Start a chat with" stays. */
export function renderConversations(
  container: HTMLElement,
  conversations: Conversation[],
  me: string,
  open: (peer: string) => void,
): void {
  // A re-render (a message came, the groups were fetched) keeps the keyboard where it was.
  const active = document.activeElement;
  const focused = container.contains(active) ? active?.getAttribute("data-peer") : null;
  container.replaceChildren(
    conversations.length
      ? h(
          "ul",
          { class: "conversations", "aria-label": "Conversations" },
          ...conversations.map((c) => conversationItem(c, me, open)),
        )
      : h("p", { class: "empty" }, "No conversations yet."),
  );
  if (focused)
    container
      .querySelector<HTMLElement>(`button.conversation[data-peer="${CSS.escape(focused)}"]`)
      ?.focus();
}

function conversationItem(c: Conversation, me: string, open: (peer: string) => void): HTMLElement {
  const att = c.last?.extra?.attachments?.[0];
  const shown = c.last?.deleted
    ? "This message was deleted"
    : c.last?.body || (att ? `📎 ${att.name ?? att.contentType}` : "");
  const preview = c.last ? `${c.last.outgoing ? "You: " : ""}${shown}` : "";
  return h(
    "li",
    {},
    h(
      "button",
      { type: "button", class: "conversation", "data-peer": c.peer, onclick: () => open(c.peer) },
      h("span", { class: "name" }, c.peer === me ? NOTE_TO_SELF : c.label),
      h("span", { class: "preview" }, preview),
      c.last && h("time", {}, time(c.last.ts)),
      c.unread > 0 &&
        h("span", { class: "unread", "aria-label": `${c.unread} unread` }, String(c.unread)),
    ),
  );
}
