/**
 * What the group screens do when used (the handlers of ./groups and ./group_admin, kept out
 * of ./app): each change goes through net/groups.ts, then the panel is shown again if it is
 * still the one on screen. Also the group notices' wording with the names known now
 * (core/group_notices.ts).
 */

import { describeNotice } from "../core/group_notices";
import type { LocalGroup, StoredMessage } from "../core/types";
import type { Groups } from "../net/groups";
import type { HttpApi } from "../net/http";
import type { IdbStore } from "../store/idb";
import { type GroupInfoHandlers, resolveMember } from "./groups";

export const MAX_LINKS_KEPT = 64; // invite links shown again after a re-render, per session

export interface GroupScreens {
  api: HttpApi;
  store: IdbStore;
  groups: Groups;
  label(account: string): string;
  shown(): string | null; // the group whose panel is on screen
  showInfo(groupId: string): Promise<void>;
  openChat(peer: string): Promise<void>;
  showList(): Promise<void>;
}

// The link this device made last per group: shown until the panel is left for good (a
// re-render after an event keeps it; it is never stored).
const links = new Map<string, string>();

export function inviteLink(groupId: string): string | null {
  return links.get(groupId) ?? null;
}

/** Everything the group info panel shows (ui/groups.ts), as one string to compare. */
export function infoKey(
  group: LocalGroup,
  link: string | null,
  label: (account: string) => string | undefined,
): string {
  const { blob: _sealed, ...shown } = group; // the sealed state is shown only once opened
  const names = [...group.members.map((m) => m.accountId), ...group.pending].map(label);
  return JSON.stringify([shown, link, names]);
}

async function accounts(ctx: GroupScreens, members: string[]): Promise<string[]> {
  const out = [];
  for (const m of members) out.push(await resolveMember(ctx.api, ctx.store, m));
  return out;
}

export function newGroupHandlers(ctx: GroupScreens) {
  return {
    cancel: () => void ctx.showList(),
    create: async (name: string, members: string[]) => {
      const gid = await ctx.groups.create(name, await accounts(ctx, members));
      await ctx.openChat(`g:${gid}`);
    },
    join: async (link: string) => {
      const { groupId, joined } = await ctx.groups.join(link);
      if (!joined) return "Your request to join was sent: an admin of the group has to approve it.";
      await ctx.openChat(`g:${groupId}`);
      return null;
    },
  };
}

function clear(id: string): void {
  const input = document.getElementById(id);
  if (input instanceof HTMLInputElement) input.value = "";
}

export function groupInfoHandlers(ctx: GroupScreens, groupId: string): GroupInfoHandlers {
  // Only if still shown: the person may have gone back to the chat meanwhile.
  // `done`: the field whose text was used (emptied, so the re-render does not put it back).
  const again = async (done?: string) => {
    if (done) clear(done);
    if (ctx.shown() === groupId) await ctx.showInfo(groupId);
  };
  return {
    back: () => void ctx.openChat(`g:${groupId}`),
    label: (account) => ctx.label(account),
    add: async (members) => {
      await ctx.groups.add(groupId, await accounts(ctx, members));
      await again("group-add");
    },
    remove: async (account) => {
      await ctx.groups.remove(groupId, account);
      await again();
    },
    leave: async () => {
      links.delete(groupId);
      await ctx.groups.leave(groupId);
      await ctx.showList();
    },
    setRole: async (account, role) => {
      await ctx.groups.setRole(groupId, account, role);
      await again();
    },
    rename: async (name) => {
      await ctx.groups.rename(groupId, name);
      await again();
    },
    invite: async () => {
      const link = await ctx.groups.invite(groupId);
      if (links.size >= MAX_LINKS_KEPT) links.delete(links.keys().next().value!);
      links.set(groupId, link);
      await again();
    },
    revokeInvite: async () => {
      links.delete(groupId); // the link shown here works no more
      await ctx.groups.revokeInvite(groupId);
      await again();
    },
    setSettings: async (change) => {
      await ctx.groups.setSettings(groupId, change);
      await again();
    },
    answer: async (account, approve) => {
      await ctx.groups.answer(groupId, account, approve);
      await again();
    },
  };
}

/** Accounts a history's notices name (so their labels can be learned before it is shown). */
export function noticeAccounts(history: readonly StoredMessage[], me: string): string[] {
  const out = new Set<string>();
  for (const m of history) {
    const n = m.extra?.notice;
    if (n) for (const a of [n.by, ...n.targets]) if (a && a !== me) out.add(a);
  }
  return [...out];
}

/** The history with each group notice worded again with the names known now. */
export function withNotices(
  history: StoredMessage[],
  label: (account: string) => string,
  me: string,
): StoredMessage[] {
  return history.map((m) =>
    m.extra?.notice ? { ...m, body: describeNotice(m.extra.notice, label, me) } : m,
  );
}

/** What is typed into the panel's fields, put back after a re-render (an event re-renders
 * it while someone types a new name or members), and the error it shows (a refusal stays
 * readable). Returns the function that puts them back. */
export function keepTyped(root: HTMLElement): () => void {
  const typed = new Map<string, string>();
  for (const input of root.querySelectorAll<HTMLInputElement>(
    "input[id]:not([readonly]):not([type=checkbox])",
  ))
    typed.set(input.id, input.value);
  const alert = root.querySelector<HTMLElement>("[role=alert][id]");
  const said = alert ? [alert.id, alert.textContent ?? ""] : null;
  return () => {
    for (const [id, value] of typed) {
      const input = root.querySelector<HTMLInputElement>(`input#${CSS.escape(id)}`);
      if (input) input.value = value;
    }
    const again = said && root.querySelector<HTMLElement>(`#${CSS.escape(said[0]!)}`);
    if (again && said[1]) again.textContent = said[1];
  };
}
