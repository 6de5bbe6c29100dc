/**
 * The live parts of a group chat: typing sent to the group, read receipts to the authors,
 * ticks on one's own group messages, and the notice when the group's disappearing timer
 * changes (mirrors src/porch/client/core/state.py `group_typing_frame`,
 * src/porch/client/sending.py `mark_read` and core/rich.py `group_timer_notice`; spec E).
 *
 * Ticks (the browser's rule; docs/design.md, "Browser client"): every member answers a group
 * text with receipts that go 1:1 to its author (docs/protocol.md section 6, "Receive"). The
 * author's row records each member's best answer, sealed with the row (`extra.receipts`).
 * The row is "delivered" once every member it went to (`extra.to`, the other members when it
 * was sent) that is still in the group has answered delivered or read, and "read" once every
 * one of them has answered read. Members who left since are not waited for; one added after
 * the send never got it and is not asked.
 */

import { encodeContent, type Receipt } from "../crypto/content";
import { CryptoError } from "../crypto/errors";
import { b64encode } from "../protocol/codec";
import type { SendFrame } from "../protocol/frames.gen";
import type { CoreState } from "./context";
import type { Event } from "./events";
import type { GroupCrypto } from "./group_crypto";
import { KIND_MEGOLM, groupOf } from "./group_send";
import * as frames from "./frames";
import type { Handler } from "./handlers";
import { timerNotice } from "./rich";
import type { LocalGroup, MessageStatus, StoredMessage, Writes } from "./types";

export const MAX_GROUPS_SCANNED = 1000; // groups searched for the rows a receipt names

/** The members a group text goes to now: every member but this account. */
export function othersOf(state: CoreState, group: LocalGroup | null): string[] {
  return (group?.members ?? []).map((m) => m.accountId).filter((a) => a !== state.accountId);
}

/** An online-only typing frame for a group: Megolm to every member device that holds the
 * current session; null when some device still lacks it (typing shares no keys) or when
 * this account is not a member. */
export async function groupTypingFrame(
  state: CoreState,
  crypto: GroupCrypto,
  groupId: string,
  started: boolean,
  frameId: string,
): Promise<SendFrame | null> {
  const group = await state.store.group(groupId);
  const accounts = (group?.members ?? []).map((m) => m.accountId);
  if (!accounts.includes(state.accountId)) return null;
  const destinations = [];
  const devices = [];
  for (const account of accounts) {
    const rows = (await state.store.peerDevices(account)).filter(
      (d) => !state.isMe(account, d.deviceId) && state.olm.hasSession([account, d.deviceId]),
    );
    if (!rows.length) continue;
    devices.push(...rows);
    destinations.push(
      frames.destination(
        account,
        rows.map((d) => ({ device: d.deviceId, registration: d.registrationId })),
      ),
    );
  }
  if (!devices.length) return null;
  let body: Uint8Array;
  try {
    const plan = await crypto.prepare(groupId, devices, state.clock());
    if (plan.shares.length) return null; // a key is owed: the next text shares it
    body = await crypto.encrypt(
      groupId,
      encodeContent({ t: "typing", state: started ? "started" : "stopped" }),
    );
  } catch (exc) {
    if (exc instanceof CryptoError) return null;
    throw exc;
  }
  return {
    ...frames.send(frameId, destinations, true),
    shared: { kind: KIND_MEGOLM, body: b64encode(body) },
  };
}

/** Read receipts for received group messages: one per author, 1:1, never to the group. */
export async function queueGroupReads(
  state: CoreState,
  peer: string,
  ids: readonly string[],
): Promise<void> {
  const byAuthor = new Map<string, string[]>();
  for (const id of ids) {
    const m = await state.store.message(peer, false, id);
    if (!m?.author || m.author === state.accountId || m.status === "notice") continue;
    byAuthor.set(m.author, [...(byAuthor.get(m.author) ?? []), id]);
  }
  for (const [author, authorIds] of byAuthor)
    await state.queueContent(author, encodeContent({ t: "receipt", kind: "read", ids: authorIds }));
}

const BEST: Record<"delivered" | "read", number> = { delivered: 1, read: 2 };

/** The status an own group row has with these answers ("sent": not everyone yet). */
export function aggregate(
  to: readonly string[],
  members: readonly string[],
  receipts: Readonly<Record<string, "delivered" | "read">>,
): MessageStatus | null {
  const waited = to.filter((a) => members.includes(a));
  if (!waited.length) return null;
  if (waited.every((a) => receipts[a] === "read")) return "read";
  if (waited.every((a) => receipts[a] !== undefined)) return "delivered";
  return null;
}

/** A receipt from `sender` for rows of one's own group texts: record it, raise the ticks. */
export async function groupReceipt(
  state: CoreState,
  sender: string,
  receipt: Receipt,
): Promise<void> {
  const store = state.store;
  const writes: Writes = { statuses: [], updates: [] };
  for (const gid of (await store.groupIds()).slice(0, MAX_GROUPS_SCANNED)) {
    const group = await store.group(gid);
    if (!group?.members.some((m) => m.accountId === sender)) continue;
    const peer = `g:${gid}`;
    for (const id of receipt.ids) {
      const row = await store.message(peer, true, id);
      if (!row || row.deleted) continue;
      const receipts = { ...row.extra?.receipts };
      const had = receipts[sender];
      if (had && BEST[had] >= BEST[receipt.kind]) continue;
      receipts[sender] = receipt.kind;
      const extra = { ...row.extra, receipts };
      writes.updates!.push({
        peer,
        outgoing: true,
        clientId: id,
        body: row.body,
        extra,
        edited: row.edited ?? false,
        deleted: false,
      });
      const members = group.members.map((m) => m.accountId);
      const status = aggregate(row.extra?.to ?? othersOf(state, group), members, receipts);
      if (status) writes.statuses!.push({ peer, ids: [id], outgoing: true, status });
    }
  }
  if (writes.updates!.length) await store.commit(writes);
}

/** The 1:1 receipt handler, and then the group rows a receipt names. */
export function withGroupTicks(direct: Handler): Handler {
  return {
    persist: (state, env, content, writes) => direct.persist(state, env, content, writes),
    async react(state, env, content, isNew) {
      await direct.react(state, env, content, isNew);
      if (env.sender !== state.accountId) await groupReceipt(state, env.sender, content as Receipt);
    },
  };
}

/** Who is said to have changed the group's state: `by` when the group bears it out (a
 * member allowed to edit), else "" (shown as "Someone"). */
export function changerOf(group: LocalGroup, by: string | undefined): string {
  const member = by ? group.members.find((m) => m.accountId === by) : undefined;
  if (!member) return "";
  return member.role === "admin" || group.settings.membersCanEdit ? member.accountId : "";
}

/** After a fetch (or one's own change): a change of the sealed state's timer adds a notice
 * line to the group's history (its writes) and returns the TimerChanged to emit. */
export async function groupTimerNotice(
  state: CoreState,
  old: LocalGroup | null,
  fresh: LocalGroup,
  by: string,
  writes: Writes,
): Promise<Event | null> {
  if (!fresh.state || !old?.state) return null;
  const seconds = fresh.state.timerSeconds;
  if (seconds === old.state.timerSeconds) return null;
  const who = by === state.accountId ? "You" : by ? await labelOf(state, by) : "Someone";
  const notice: StoredMessage = {
    peer: `g:${fresh.groupId}`,
    clientId: `timer-${fresh.stateRevision}`,
    outgoing: false,
    device: 0,
    ts: state.clock(),
    body: timerNotice(who, seconds),
    status: "notice",
    serverTs: 0,
    unread: false,
  };
  (writes.messages ??= []).push(notice);
  return { type: "TimerChanged", peer: notice.peer, seconds, by };
}

/** A timer notice that said "Someone": named once the update of its revision comes. */
export interface UnnamedNotice {
  revision: number;
  clientId: string;
  peer: string;
}

/** The notice line `notice` names `by`, when the group lets them change its state. */
export async function nameNotice(
  state: CoreState,
  groupId: string,
  notice: UnnamedNotice,
  by: string,
): Promise<void> {
  const group = await state.store.group(groupId);
  const seconds = group?.state?.timerSeconds;
  if (!group || seconds === undefined || !changerOf(group, by)) return;
  const who = by === state.accountId ? "You" : await labelOf(state, by);
  const { peer, clientId } = notice;
  const body = timerNotice(who, seconds);
  const update = {
    peer,
    outgoing: false,
    clientId,
    body,
    extra: null,
    edited: false,
    deleted: false,
  };
  await state.store.commit({ updates: [update] });
}

async function labelOf(state: CoreState, account: string): Promise<string> {
  return (await state.store.contact(account))?.label ?? account.slice(0, 8);
}

/** The group's disappearing timer in seconds (0: off), from its sealed state. */
export async function groupTimer(state: CoreState, peer: string): Promise<number> {
  const gid = groupOf(peer);
  if (gid === null) return 0;
  return (await state.store.group(gid))?.state?.timerSeconds ?? 0;
}
