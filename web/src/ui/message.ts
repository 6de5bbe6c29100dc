/**
 * One message bubble in the chat (wmedia owns it): the reply quote, attachments (thumbnail,
 * then the full image or a file to save), the body, reactions, "edited"/"deleted" markers,
 * the disappearing timer, ticks, and the actions menu (reply, react, edit, delete).
 *
 * A reply's quote is the replier's claim (docs/protocol.md, "Rich contents"; quotes.py): the
 * quoted message's own text is shown when this device holds it, else the quote is marked
 * "original not found" and its words are the replier's.
 */

import type { MessageStatus, StoredMessage } from "../core/types";
import type { Attachment } from "../crypto/rich";
import { h, time } from "./dom";
import { attachmentView, type MediaView } from "./message_media";

const TICKS: Partial<Record<MessageStatus, [string, string]>> = {
  queued: ["🕓", "waiting to send"],
  sent: ["✓", "sent"],
  delivered: ["✓✓", "delivered"],
  read: ["✓✓", "read"],
  failed: ["!", "not sent"],
};
// A text held in the outbox while a verified contact's changed key waits (core/outbox_paused.ts).
const HELD_TICK: [string, string] = ["⏸", "held, not sent"];
export const HELD_NOTE = "Not sent: waiting for you to compare the new safety number.";
export const QUICK_REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

export interface MessageActions {
  reply(m: StoredMessage): void;
  react(m: StoredMessage, emoji: string): void;
  edit(m: StoredMessage): void;
  remove(m: StoredMessage): void;
}

export interface BubbleContext {
  me: string;
  peerLabel: string;
  /** A group member's label (quotes, reactions); absent in a 1:1 chat: the peer's label. */
  label?(account: string): string;
  /** The message a quote names, when this device holds it (same chat, author and id). */
  original(author: string, id: string): StoredMessage | undefined;
  actions: MessageActions | null; // null: the read-only bubbles of ChatView without rich handlers
  media: MediaView | null;
  now: number;
  /** The message whose actions menu is open: kept across re-renders (receipts, events). */
  menuOpen: string | null;
  setMenu(clientId: string | null): void;
  /** Outgoing messages held (paused) until the contact's new safety number is accepted. */
  held?: ReadonlySet<string>;
}

function who(ctx: BubbleContext, account: string): string {
  if (account === ctx.me) return "You";
  return ctx.label ? ctx.label(account) : ctx.peerLabel;
}

function quoteView(m: StoredMessage, ctx: BubbleContext): HTMLElement | null {
  const quote = m.extra?.reply;
  if (!quote) return null;
  const found = ctx.original(quote.author, quote.id);
  const author = who(ctx, quote.author);
  let text: string;
  if (found && found.status !== "notice") {
    const body = found.deleted
      ? "This message was deleted"
      : found.body ||
        (found.extra?.attachments?.[0] ? `📎 ${attachmentLabel(found.extra.attachments[0])}` : "");
    text = `${author}: ${body}`;
  } else {
    const said = quote.body ? `: “${quote.body}”` : "";
    text = `${author} (original not found; the replier's quote${said})`;
  }
  return h(
    "blockquote",
    { class: `quote${found ? "" : " unverified"}`, "data-reply-to": quote.id },
    text,
  );
}

export function attachmentLabel(a: Attachment): string {
  return a.name ?? a.contentType;
}

function reactionsView(m: StoredMessage, ctx: BubbleContext): HTMLElement | null {
  const counts = new Map<string, string[]>();
  for (const [reactor, r] of Object.entries(m.extra?.reactions ?? {})) {
    if (!r.emoji) continue; // a removal, kept for its ts
    counts.set(r.emoji, [...(counts.get(r.emoji) ?? []), who(ctx, reactor)]);
  }
  if (!counts.size) return null;
  return h(
    "ul",
    { class: "reactions", "aria-label": "Reactions" },
    ...[...counts].map(([emoji, by]) =>
      h(
        "li",
        { "data-emoji": emoji, title: by.join(", "), "aria-label": `${emoji} by ${by.join(", ")}` },
        by.length > 1 ? `${emoji} ${by.length}` : emoji,
      ),
    ),
  );
}

function remaining(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

function menu(m: StoredMessage, ctx: BubbleContext, actions: MessageActions): HTMLElement {
  const mine = m.extra?.reactions?.[ctx.me]?.emoji ?? "";
  const open = ctx.menuOpen === m.clientId;
  const then = (fn: () => void) => () => {
    ctx.setMenu(null);
    fn();
  };
  const panel = h(
    "div",
    { class: "actions", hidden: !open, role: "group", "aria-label": "Actions" },
    h("button", { type: "button", class: "reply", onclick: then(() => actions.reply(m)) }, "Reply"),
    ...QUICK_REACTIONS.map((emoji) =>
      h(
        "button",
        {
          type: "button",
          class: `react${emoji === mine ? " mine" : ""}`,
          "aria-pressed": emoji === mine ? "true" : "false",
          "aria-label": emoji === mine ? `Remove reaction ${emoji}` : `React with ${emoji}`,
          onclick: then(() => actions.react(m, emoji === mine ? "" : emoji)),
        },
        emoji,
      ),
    ),
    m.outgoing &&
      h("button", { type: "button", class: "edit", onclick: then(() => actions.edit(m)) }, "Edit"),
    m.outgoing &&
      h(
        "button",
        { type: "button", class: "danger", onclick: then(() => actions.remove(m)) },
        "Delete for everyone",
      ),
  );
  const toggle = h(
    "button",
    {
      type: "button",
      class: "more",
      "aria-label": "Message actions",
      "aria-expanded": String(open),
      onclick: () => {
        panel.hidden = !panel.hidden;
        toggle.setAttribute("aria-expanded", String(!panel.hidden));
        ctx.setMenu(panel.hidden ? null : m.clientId);
      },
    },
    "⋯",
  );
  return h("div", { class: "menu" }, toggle, panel);
}

export function messageItem(m: StoredMessage, ctx: BubbleContext): HTMLElement {
  const held = m.outgoing && m.status === "queued" && ctx.held?.has(m.clientId) === true;
  const tick = held ? HELD_TICK : m.outgoing ? TICKS[m.status] : undefined;
  const attrs: Record<string, string> = {
    class: `message ${m.outgoing ? "out" : "in"} ${m.status}${m.deleted ? " deleted" : ""}${held ? " held" : ""}`,
    "data-status": m.status,
    "data-id": m.clientId,
  };
  if (held) attrs["data-held"] = "true";
  if (m.deleted) attrs["data-deleted"] = "true";
  if (m.edited) attrs["data-edited"] = "true";
  const actionable =
    ctx.actions && !m.deleted && m.status !== "notice" && m.status !== "undecryptable";
  const attachments = m.deleted ? [] : (m.extra?.attachments ?? []);
  return h(
    "li",
    attrs,
    !m.deleted && quoteView(m, ctx),
    ...attachments.map((a, i) => attachmentView(m, a, i, ctx.media)),
    m.deleted
      ? h("p", { class: "body deleted-marker" }, "This message was deleted")
      : (m.body || !attachments.length) && h("p", { class: "body" }, m.body),
    !m.deleted && reactionsView(m, ctx),
    held && h("p", { class: "held-note" }, HELD_NOTE),
    h(
      "p",
      { class: "meta" },
      m.edited && h("span", { class: "edited" }, "edited"),
      m.expiresAt !== undefined &&
        h(
          "span",
          { class: "expires", title: "disappears", "aria-label": "disappearing message" },
          `⏱ ${remaining(m.expiresAt - ctx.now)}`,
        ),
      h("time", { datetime: new Date(m.ts).toISOString() }, time(m.ts)),
      tick &&
        h(
          "span",
          { class: `tick ${held ? "held" : m.status}`, "aria-label": tick[1], title: tick[1] },
          tick[0],
        ),
    ),
    actionable && menu(m, ctx, ctx.actions!),
  );
}
