/**
 * Keeping the local groups in step with the server (mirrors
 * src/porch/client/core/group_sync.py; issue 7 spec B, E). A `group_update` from a member,
 * a state key, or the server's `group_changed` hint makes the core ask for the group again
 * (FetchGroup); the answer comes back through `fetched`: the group is stored with its state
 * opened, and a member that disappeared starts a new Megolm session on the next send (the
 * leaver holds the old key). A 404 means this account is no longer a member (the server
 * answers alike for an unknown group): the group is kept, without this account, and its
 * history stays.
 */

import type { GroupUpdate } from "../crypto/content";
import { CryptoError } from "../crypto/errors";
import { type GroupState, blobEpoch, openGroupState } from "../crypto/group_state";
import type { CoreState } from "./context";
import { ClientError } from "./errors";
import type { GroupCrypto } from "./group_crypto";
import { type UnnamedNotice, changerOf, groupTimerNotice, nameNotice } from "./group_live";
import {
  type GroupNotice,
  noticeRow,
  plausible,
  settingsNotice,
  stateNotice,
} from "./group_notices";
import type { GroupRole, LocalGroup, StoredMessage, Writes } from "./types";

export const MAX_FETCHING = 1024; // groups asked for at once; a flood of hints is dropped
export const MAX_TOLD = 64; // claimed updates held per group until its fetch answers

type Claim = [by: string, update: GroupUpdate];

/** What a contact is called here, for a notice's first wording (re-worded when shown). */
export async function labelsOf(
  state: CoreState,
  accounts: Iterable<string>,
): Promise<(a: string) => string> {
  const known = new Map<string, string>();
  for (const a of new Set(accounts))
    known.set(a, (await state.store.contact(a))?.label ?? a.slice(0, 8));
  return (a) => known.get(a) ?? a.slice(0, 8);
}

/** The notice rows of `claims` the fetched group bears out (a claim that does not is
 * dropped, never shown as fact). */
async function notices(
  state: CoreState,
  group: ServerGroup,
  before: GroupState | null, // the state before the claimed change, as far as known
  fresh: LocalGroup,
  claims: Claim[],
): Promise<StoredMessage[]> {
  const shown: Array<[number, GroupNotice]> = [];
  for (const [by, update] of claims) {
    if (!plausible(by, update, group)) continue;
    let notice: GroupNotice | null = { by, action: update.action, targets: [...update.targets] };
    if (update.action === "state")
      // Only the change that made the current state can be told by what changed.
      notice =
        update.revision === group.stateRevision
          ? stateNotice(by, before, fresh.state)
          : { ...notice, what: "details" };
    if (update.action === "settings")
      // Sealed with the state it made (docs/protocol.md, "Sealed group state"): what it set
      // is in that state; a change the server alone holds is told by the server's copy.
      notice =
        update.revision === group.stateRevision && fresh.state
          ? settingsNotice(by, before?.settings ?? null, fresh.state.settings)
          : update.revision === group.revision
            ? settingsNotice(by, null, group.settings)
            : notice;
    if (notice) shown.push([update.revision, notice]);
  }
  if (!shown.length) return [];
  const label = await labelsOf(
    state,
    shown.flatMap(([, n]) => [n.by, ...n.targets]),
  );
  const now = state.clock();
  return Promise.all(
    shown.map(([rev, n]) => noticeRow(group.id, rev, n, now, label, state.accountId)),
  );
}

/** A group as the server's routes answer it (docs/protocol.md, "Groups"), checked. */
export interface ServerGroup {
  id: string;
  revision: number;
  state: Uint8Array; // the sealed state blob
  stateRevision: number; // the revision the blob was sealed for
  settings: { membersCanEdit: boolean; joinApproval: boolean };
  members: Array<{ account: string; role: GroupRole }>;
  pending: string[];
  invite: boolean;
}

/** The server's group with its state opened if this device has the key (else the state it
 * opened before, which stays until a newer one opens). */
export async function localGroup(
  state: CoreState,
  group: ServerGroup,
  old: LocalGroup | null,
): Promise<LocalGroup> {
  let opened = old?.state ?? null;
  let stateRevision = old?.stateRevision ?? 0;
  try {
    const key = await state.store.stateKey(group.id, blobEpoch(group.state));
    if (key) {
      opened = await openGroupState(key, group.id, group.stateRevision, group.state, stateRevision);
      stateRevision = group.stateRevision;
    }
  } catch (exc) {
    if (!(exc instanceof CryptoError)) throw exc;
    // Kept as it was; the reason is not logged with anything from the state.
  }
  const me = group.members.find((m) => m.account === state.accountId);
  return {
    groupId: group.id,
    revision: group.revision,
    role: me?.role ?? "member",
    blob: group.state,
    settings: group.settings,
    invite: group.invite,
    members: group.members.map((m) => ({ accountId: m.account, role: m.role })),
    pending: group.pending,
    state: opened,
    stateRevision,
  };
}

export class GroupSync {
  readonly #fetching = new Set<string>();
  readonly #again = new Set<string>(); // asked for again while a fetch was out
  // Groups this account is leaving or has left: the server's hints about them are not
  // fetched (the answer is a 404 that says nothing new).
  readonly left = new Set<string>();
  readonly #rotate = new Map<string, string>(); // group -> who left: the lowest admin rekeys
  readonly #claims = new Map<string, string>(); // group -> who says it changed the state
  readonly #unnamed = new Map<string, UnnamedNotice>(); // a "Someone" notice an update may name
  readonly #told = new Map<string, Claim[]>(); // claims awaiting a fetch
  readonly #later = new Map<string, Claim[]>(); // ... claims for the fetch after that
  // The state before a change fetched without its claim (the server's group_changed hint
  // is often faster than the member's group_update): what the claim is told against.
  readonly #prior = new Map<string, GroupState | null>();

  constructor(
    private readonly state: CoreState,
    private readonly crypto: GroupCrypto,
  ) {}

  /** `by` claims `update`: fetch the group, and make a notice of it once the fetch bears it
   * out. A fetch already out may have left before the change was made: the next one judges. */
  told(by: string, update: GroupUpdate): void {
    const told = this.#fetching.has(update.group) ? this.#later : this.#told;
    const claims = told.get(update.group) ?? [];
    if (claims.length < MAX_TOLD && told.size <= MAX_FETCHING) {
      claims.push([by, update]);
      told.set(update.group, claims);
    }
    const left = update.action === "leave" && by !== this.state.accountId;
    this.fetch(update.group, left ? by : null);
  }

  /** Ask for the group (once at a time; a hint during a fetch fetches once more).
   * `leaver`: the account whose `leave` update made this fetch. */
  fetch(groupId: string, leaver: string | null = null): void {
    if (this.left.has(groupId)) return;
    if (leaver !== null && this.#rotate.size < MAX_FETCHING) this.#rotate.set(groupId, leaver);
    if (this.#fetching.has(groupId)) {
      this.#again.add(groupId);
      return;
    }
    if (this.#fetching.size >= MAX_FETCHING) return;
    this.#fetching.add(groupId);
    this.state.out.push({ type: "FetchGroup", groupId });
  }

  /** `by` sent a `state` update: the next fetch names them in a timer notice (./group_live). */
  async claim(groupId: string, by: string, revision = -1): Promise<void> {
    // Or the last fetch's "Someone" notice of that revision is theirs (the hint came first).
    const open = this.#unnamed.get(groupId);
    if (open && open.revision === revision) {
      this.#unnamed.delete(groupId);
      return nameNotice(this.state, groupId, open, by);
    }
    if (this.#claims.size < MAX_FETCHING || this.#claims.has(groupId))
      this.#claims.set(groupId, by);
  }

  reset(): void {
    this.#fetching.clear();
    this.#again.clear();
    this.#told.clear();
    this.#later.clear();
  }

  #done(groupId: string): void {
    this.#fetching.delete(groupId);
    const later = this.#later.get(groupId);
    this.#later.delete(groupId);
    if (later) this.#told.set(groupId, later);
    if (this.#again.delete(groupId)) this.fetch(groupId);
  }

  /** Store what the server answered; returns the stored group. */
  async fetched(group: ServerGroup): Promise<LocalGroup> {
    const state = this.state;
    const old = await state.store.group(group.id);
    const fresh = await localGroup(state, group, old);
    // Member changes and renames (./group_notices), then a timer change (./group_live).
    const claims = this.#told.get(group.id) ?? [];
    this.#told.delete(group.id);
    const stateClaim = claims.some(([, u]) => u.action === "state" || u.action === "settings");
    const prior = this.#prior.has(group.id) ? this.#prior.get(group.id)! : (old?.state ?? null);
    const messages = await notices(state, group, prior, fresh, claims);
    if (stateClaim) this.#prior.delete(group.id);
    else if (old && old.stateRevision !== fresh.stateRevision && this.#prior.size < MAX_FETCHING)
      this.#prior.set(group.id, old.state);
    const writes: Writes = { groups: [fresh], messages };
    const by = changerOf(fresh, this.#claims.get(group.id));
    this.#claims.delete(group.id);
    const timer = await groupTimerNotice(state, old, fresh, by, writes);
    await state.store.commit(writes);
    this.#unnamed.delete(group.id);
    if (timer && !by && this.#unnamed.size < MAX_FETCHING)
      this.#unnamed.set(group.id, {
        revision: fresh.revision,
        clientId: writes.messages!.at(-1)!.clientId,
        peer: `g:${group.id}`,
      });
    const now = new Set(fresh.members.map((m) => m.accountId));
    const before = new Set(old?.members.map((m) => m.accountId) ?? []);
    const gone = [...before].some((a) => !now.has(a));
    const back = old !== null && now.has(state.accountId) && !before.has(state.accountId);
    // Whoever went holds the current key; back in after a removal, the members dropped ours.
    if (gone || back) await this.crypto.memberRemoved(group.id);
    const leaver = this.#rotate.get(group.id);
    this.#rotate.delete(group.id);
    const admins = fresh.members.filter((m) => m.role === "admin").map((m) => m.accountId);
    const lowestAdmin = admins.sort()[0] === state.accountId;
    if (leaver !== undefined && !now.has(leaver) && lowestAdmin)
      state.out.push({ type: "RotateStateKey", groupId: group.id });
    // Someone new (as group_sync.py): one who joined by link may hold an older epoch's key.
    if (lowestAdmin && old !== null && [...now].some((a) => !before.has(a)))
      state.out.push({ type: "ShareStateKey", groupId: group.id });
    this.#done(group.id);
    state.emit({ type: "GroupChanged", groupId: group.id });
    if (timer) state.emit(timer);
    return fresh;
  }

  async failed(groupId: string, error: ClientError): Promise<void> {
    // Gone is final, whenever the claims came: judge them by the last known group.
    const claims = [...(this.#told.get(groupId) ?? []), ...(this.#later.get(groupId) ?? [])];
    this.#told.delete(groupId);
    this.#later.delete(groupId);
    this.#done(groupId);
    if (error.code !== "not_found") return; // tried again on the next hint
    const local = await this.state.store.group(groupId);
    const me = this.state.accountId;
    if (!local || !local.members.some((m) => m.accountId === me)) return;
    const others = local.members.filter((m) => m.accountId !== me);
    // Who removed us, if a member as this device last knew the group said so ("" if not).
    const by =
      claims.find(
        ([b, u]) =>
          u.action === "remove" &&
          u.targets.includes(me) &&
          local.members.some((m) => m.accountId === b),
      )?.[0] ?? "";
    const label = await labelsOf(this.state, [by]);
    const notice = { by, action: "remove" as const, targets: [me] };
    const row = await noticeRow(groupId, local.revision, notice, this.state.clock(), label, me);
    await this.state.store.commit({
      groups: [{ ...local, members: others, role: "member" }],
      messages: [row],
    });
    this.state.emit({ type: "GroupChanged", groupId });
  }
}
