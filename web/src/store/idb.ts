/**
 * The browser's local store on IndexedDB (mirrors porch.client.store): the Olm account and
 * session pickles, contacts and their devices, history, the outbox and the seen envelope ids.
 * Pickles, message bodies, outbox contents and the profile's secrets are sealed (./sealer);
 * what stays readable is listed in docs/security.md ("Browser storage").
 *
 * `commit` seals everything first and then writes in ONE IndexedDB transaction: a transaction
 * closes as soon as it waits on anything but its own requests (WebCrypto included), so sealing
 * inside it would split it. That one transaction is what makes store-before-ack hold.
 */

import { type IDBPDatabase, openDB } from "idb";
import { utf8decode, utf8encode } from "../protocol/codec";
import {
  type Contact,
  type Conversation,
  type LocalGroup,
  type LocalStore,
  type OutboundSessionRow,
  type OutboxItem,
  type PeerDeviceRow,
  type StoredMessage,
  type MessageRef,
  type TimerRow,
  type Writes,
  messageKey,
} from "../core/types";
import { groupFromBytes, keySlot, outboundFromBytes } from "./group_rows";
import { Sealer, StoreError } from "./sealer";
import {
  DB_VERSION,
  type MessageRecord,
  type PorchDB,
  STORES,
  type Tx,
  resendKey,
  upgrade as upgradeSchema,
} from "./rows_schema";
import { byTime, moves, sealMessage, sealUpdate, unsealMessage } from "./rows_message";
import { sealGroupWrites } from "./rows_group";
import { applyPause, applyResume } from "./rows_paused";
import { applyResends, latestSentAt } from "./rows_resend";

export { DB_VERSION } from "./rows_schema";
export const MAX_HISTORY = 500; // messages read back per conversation

export class IdbStore implements LocalStore {
  private constructor(
    private readonly db: IDBPDatabase<PorchDB>,
    readonly sealer: Sealer,
  ) {}

  /** Open (or create) the profile's database; the sealing key is made on first open. */
  static async open(name = "porch"): Promise<IdbStore> {
    const db = await openDB<PorchDB>(name, DB_VERSION, {
      upgrade(db, oldVersion, _newVersion, upgradeTx) {
        upgradeSchema(db, oldVersion, upgradeTx);
      },
    });
    let key = await db.get("meta", "sealkey");
    if (!(key instanceof CryptoKey)) {
      const sealer = await Sealer.generate();
      // add, not put: two tabs opening at once must not each keep a different key.
      try {
        await db.add("meta", sealer.key, "sealkey");
      } catch {
        /* the other tab's key won */
      }
      key = await db.get("meta", "sealkey");
    }
    if (!(key instanceof CryptoKey))
      throw new StoreError("this browser cannot store a CryptoKey in IndexedDB");
    return new IdbStore(db, new Sealer(key));
  }

  close(): void {
    this.db.close();
  }

  // Secrets (profile, Olm account) ---------------------------------------------------------

  async getSecret(name: string): Promise<Uint8Array | null> {
    const value = await this.db.get("meta", `secret:${name}`);
    return value instanceof Uint8Array ? this.sealer.open(`meta:${name}`, value) : null;
  }

  async putSecret(name: string, value: Uint8Array): Promise<void> {
    await this.db.put("meta", await this.sealer.seal(`meta:${name}`, value), `secret:${name}`);
  }

  /** Every stored session pickle: "account/device" -> pickle. */
  async sessions(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const tx = this.db.transaction("sessions");
    const rows: Array<[string, Uint8Array]> = [];
    for await (const cursor of tx.store) rows.push([cursor.key, cursor.value]);
    for (const [k, v] of rows) out.set(k, utf8decode(await this.sealer.open(`sessions:${k}`, v)));
    return out;
  }

  // LocalStore ----------------------------------------------------------------------------

  async peerDevices(accountId: string): Promise<PeerDeviceRow[]> {
    const rows = await this.db.getAllFromIndex("devices", "account", accountId);
    return rows.sort((a, b) => a.deviceId - b.deviceId);
  }

  async contact(accountId: string): Promise<Contact | null> {
    return (await this.db.get("contacts", accountId)) ?? null;
  }

  async seen(envelopeId: number): Promise<boolean> {
    return (await this.db.get("seen", envelopeId)) !== undefined;
  }

  async pending(afterSeq: number, limit: number): Promise<OutboxItem[]> {
    const rows = await this.db.getAll("outbox", IDBKeyRange.lowerBound(afterSeq, true), limit);
    return Promise.all(
      rows.map(async (r) => ({
        ...r,
        seq: r.seq!,
        content: await this.sealer.open(`outbox:${r.clientId}`, r.content),
      })),
    );
  }

  outboxSize(): Promise<number> {
    return this.db.count("outbox");
  }

  async pausedIds(recipient: string): Promise<string[]> {
    const rows = await this.db.getAllFromIndex("paused", "recipient", recipient);
    return rows.sort((a, b) => a.seq - b.seq).map((r) => r.clientId);
  }

  async commit(writes: Writes): Promise<Set<string>> {
    const seal = (slot: string, data: Uint8Array) => this.sealer.seal(slot, data);
    const olmAccount =
      writes.olmAccount === undefined
        ? null
        : await seal("meta:olm_account", utf8encode(writes.olmAccount));
    const sessions = await Promise.all(
      [...(writes.sessions ?? [])].map(
        async ([k, v]) => [k, await seal(`sessions:${k}`, utf8encode(v))] as const,
      ),
    );
    const messages = await Promise.all(
      (writes.messages ?? []).map((m) => sealMessage(this.sealer, m)),
    );
    const updates = await Promise.all(
      (writes.updates ?? []).map((u) => sealUpdate(this.sealer, u)),
    );
    const enqueue = await Promise.all(
      (writes.enqueue ?? []).map(async (i) => ({
        ...i,
        content: await seal(`outbox:${i.clientId}`, i.content),
      })),
    );
    const { groups, stateKeys, outbound } = await sealGroupWrites(this.sealer, writes);
    const added = new Set<string>();
    const tx = this.db.transaction([...STORES], "readwrite") as unknown as Tx;
    for (const g of groups) await tx.objectStore("groups").put(g);
    for (const id of writes.forgetGroups ?? []) await tx.objectStore("groups").delete(id);
    for (const k of stateKeys) {
      // The first key of an epoch wins (a later copy of it changes nothing).
      if ((await tx.objectStore("group_keys").getKey(k.slot)) === undefined)
        await tx.objectStore("group_keys").put(k);
    }
    for (const o of outbound) await tx.objectStore("megolm_out").put(o);
    for (const [k, v] of writes.inbound ?? [])
      await tx.objectStore("megolm_in").put(utf8encode(v), k);
    if (olmAccount) await tx.objectStore("meta").put(olmAccount, "secret:olm_account");
    for (const [k, v] of sessions) await tx.objectStore("sessions").put(v, k);
    for (const c of writes.contacts ?? []) {
      // A contact the core read before a key fetch carries the short id it had then; a label
      // learned meanwhile (setLabel, from the server's profile) stays.
      const learned = (await tx.objectStore("contacts").get(c.accountId))?.label;
      const keep = learned !== undefined && c.label === c.accountId.slice(0, 8);
      await tx.objectStore("contacts").put(keep ? { ...c, label: learned } : c);
    }
    for (const d of writes.devices ?? [])
      await this.#putDevices(tx, d.accountId, d.rows, d.replace);
    for (const [a, d] of writes.dropDevices ?? []) await tx.objectStore("devices").delete([a, d]);
    for (const m of messages) {
      if ((await tx.objectStore("messages").getKey(m.key)) !== undefined) continue;
      await tx.objectStore("messages").put(m);
      added.add(m.key);
    }
    for (const [id, ts] of writes.seen ?? []) await tx.objectStore("seen").put({ id, ts });
    for (const i of enqueue) await tx.objectStore("outbox").add(i);
    for (const clientId of writes.dequeue ?? []) {
      const seq = await tx.objectStore("outbox").index("clientId").getKey(clientId);
      if (seq !== undefined) await tx.objectStore("outbox").delete(seq);
    }
    if (writes.pause) await applyPause(tx, writes.pause);
    if (writes.resume) await applyResume(tx, writes.resume);
    for (const change of writes.statuses ?? []) {
      for (const id of change.ids) {
        const store = tx.objectStore("messages");
        const row = await store.get(messageKey(change.peer, change.outgoing, id));
        if (!row || !moves(row.status, change.status)) continue;
        row.status = change.status;
        if (change.status === "read") row.unread = false;
        if (change.serverTs) row.serverTs = change.serverTs;
        await store.put(row);
      }
    }
    for (const u of updates) {
      const store = tx.objectStore("messages");
      const row = await store.get(u.key);
      if (!row) continue;
      row.body = u.body;
      if (u.extra) row.extra = u.extra;
      else delete row.extra;
      row.edited = u.edited;
      row.deleted = u.deleted;
      if (u.deleted) delete row.expiresAt;
      await store.put(row);
    }
    for (const t of writes.timers ?? []) await tx.objectStore("timers").put(t);
    if (writes.resends) await applyResends(tx, writes.resends);
    await tx.done;
    return added;
  }

  async #putDevices(
    tx: Tx,
    accountId: string,
    rows: PeerDeviceRow[],
    replace: boolean,
  ): Promise<void> {
    const store = tx.objectStore("devices");
    if (replace) {
      const keep = new Set(rows.map((r) => r.deviceId));
      for (const old of await store.index("account").getAll(accountId)) {
        if (!keep.has(old.deviceId)) await store.delete([accountId, old.deviceId]);
      }
    }
    for (const row of rows) await store.put(row);
  }

  async history(peer: string, limit = MAX_HISTORY): Promise<StoredMessage[]> {
    const rows = (await this.db.getAllFromIndex("messages", "peer", peer))
      .sort(byTime)
      .slice(-limit);
    return Promise.all(rows.map((r) => unsealMessage(this.sealer, r)));
  }

  async message(peer: string, outgoing: boolean, clientId: string): Promise<StoredMessage | null> {
    const row = await this.db.get("messages", messageKey(peer, outgoing, clientId));
    return row ? unsealMessage(this.sealer, row) : null;
  }

  async findOutgoing(
    peer: string,
    clientId: string | null,
    serverTs: number,
  ): Promise<StoredMessage | null> {
    if (clientId !== null) return this.message(peer, true, clientId);
    const row = latestSentAt(await this.db.getAllFromIndex("messages", "peer", peer), serverTs);
    return row ? unsealMessage(this.sealer, row) : null;
  }

  async resendCount(peer: string, clientId: string): Promise<number> {
    return (await this.db.get("resends", resendKey(peer, clientId)))?.count ?? 0;
  }

  async timer(peer: string): Promise<TimerRow | null> {
    return (await this.db.get("timers", peer)) ?? null;
  }

  /** The disappearing messages whose time came go, all in one transaction. */
  async expire(now: number): Promise<MessageRef[]> {
    const tx = this.db.transaction("messages", "readwrite");
    const gone: MessageRef[] = [];
    const range = IDBKeyRange.upperBound(now);
    for await (const cursor of tx.store.index("expiresAt").iterate(range)) {
      const { peer, outgoing, clientId } = cursor.value;
      gone.push({ peer, outgoing, clientId });
      await cursor.delete();
    }
    await tx.done;
    return gone;
  }

  async conversations(): Promise<Conversation[]> {
    const byPeer = new Map<string, MessageRecord[]>();
    for (const r of await this.db.getAll("messages")) {
      const list = byPeer.get(r.peer) ?? [];
      list.push(r);
      byPeer.set(r.peer, list);
    }
    const contacts = new Map((await this.db.getAll("contacts")).map((c) => [c.accountId, c]));
    for (const c of contacts.values())
      if (!byPeer.has(c.accountId) && c.label !== c.accountId.slice(0, 8))
        byPeer.set(c.accountId, []);
    const groupLabels = new Map<string, string>();
    for (const id of await this.groupIds()) {
      const g = await this.group(id);
      const peer = `g:${id}`;
      groupLabels.set(peer, g?.state?.name || `Group ${id.slice(0, 8)}`);
      if (!byPeer.has(peer)) byPeer.set(peer, []);
    }
    const out: Conversation[] = [];
    for (const [peer, rows] of byPeer) {
      rows.sort(byTime);
      const last = rows.at(-1);
      out.push({
        peer,
        label: groupLabels.get(peer) ?? contacts.get(peer)?.label ?? peer.slice(0, 8),
        last: last ? await unsealMessage(this.sealer, last) : null,
        unread: rows.filter((r) => r.unread).length,
      });
    }
    return out.sort((a, b) => (b.last?.ts ?? Infinity) - (a.last?.ts ?? Infinity));
  }

  // Groups --------------------------------------------------------------------------------

  async group(groupId: string): Promise<LocalGroup | null> {
    const row = await this.db.get("groups", groupId);
    return row ? groupFromBytes(await this.sealer.open(`groups:${groupId}`, row.sealed)) : null;
  }

  async groupIds(): Promise<string[]> {
    return (await this.db.getAllKeys("groups")).sort();
  }

  async stateKey(groupId: string, epoch: number): Promise<Uint8Array | null> {
    const slot = keySlot(groupId, epoch);
    const row = await this.db.get("group_keys", slot);
    return row ? this.sealer.open(`gkey:${slot}`, row.key) : null;
  }

  async latestStateKey(groupId: string): Promise<[number, Uint8Array] | null> {
    const rows = await this.db.getAllFromIndex("group_keys", "group", groupId);
    const latest = rows.sort((a, b) => b.epoch - a.epoch)[0];
    if (!latest) return null;
    return [latest.epoch, await this.sealer.open(`gkey:${latest.slot}`, latest.key)];
  }

  async outboundSession(groupId: string): Promise<OutboundSessionRow | null> {
    const row = await this.db.get("megolm_out", groupId);
    if (!row) return null;
    return outboundFromBytes(await this.sealer.open(`megolm_out:${groupId}`, row.sealed));
  }

  async inboundSession(key: string): Promise<string | null> {
    const row = await this.db.get("megolm_in", key);
    return row ? utf8decode(row) : null;
  }

  /** Name a contact as the user knows it (+number or @username). */
  async setLabel(accountId: string, label: string): Promise<void> {
    // One transaction: a commit between a read and a put here would lose its pinned key.
    const tx = this.db.transaction("contacts", "readwrite");
    const old = await tx.store.get(accountId);
    await tx.store.put({
      accountId,
      masterKey: null,
      deviceListVersion: null,
      deviceIds: [],
      ...old,
      label,
    });
    await tx.done;
  }
}
