/**
 * Megolm sessions of groups for the browser core (mirrors src/porch/client/core/groups.py;
 * docs/protocol.md section 8, "Megolm group sessions", "Group key content", "Group message
 * body"). Sans-IO: the store is read, and writes are committed with what they belong to.
 *
 * Sending: `prepare(group, devices, now)` rotates the outbound session when it must (a member
 * went, a device holding the key is no longer listed, the policy's count or age, a clock that
 * went back) and says which devices are still owed its key (`group_key` contents, sent over
 * Olm); `encrypt` gives the kind-2 body, the ratchet stored before the body is returned (a
 * restored older session would reuse an index, which receivers refuse as a replay).
 *
 * Receiving: `receiveKey` for a `group_key` that came over Olm from the device it names
 * (signature by that device's Ed25519 key, bound to group and session), `decrypt` for a
 * kind-2 body: its replay record moves, and the caller commits `inboundWrite` with the
 * message it stores.
 */

import { b64decode, b64encode } from "../protocol/codec";
import {
  type Content,
  type GroupKey,
  type GroupStateKey,
  decodeContent,
  encodeContent,
} from "../crypto/content";
import { BAD_KEY, CryptoError, DecryptError, SignatureError } from "../crypto/errors";
import { decodeGroupMessage, encodeGroupMessage } from "../crypto/group_message";
import { MAX_EPOCH, STATE_KEY_LEN } from "../crypto/group_state";
import { InboundGroupSession, OutboundGroupSession, groupKeyPayload } from "../crypto/megolm";
import type { Libolm } from "../crypto/olm_raw";
import type { CoreState } from "./context";
import { type OutboundSessionRow, type PeerDeviceRow, inboundKey } from "./types";

export const UNKNOWN_SESSION = "unknown_session";
export const DAY_MS = 86_400_000;

/** When an outbound session is replaced (megolm.py's RotationPolicy; Matrix's defaults). */
export interface RotationPolicy {
  maxMessages: number;
  maxAgeMs: number;
}
export const DEFAULT_POLICY: RotationPolicy = { maxMessages: 100, maxAgeMs: 7 * DAY_MS };

export type RotationReason = "new" | "member_removed" | "max_messages" | "clock" | "max_age";

export interface KeyShare {
  accountId: string;
  deviceId: number;
  content: Uint8Array; // the encoded group_key content
}

export interface GroupSendPlan {
  groupId: string;
  sessionId: string;
  rotated: RotationReason | null;
  shares: KeyShare[];
}

export interface GroupDecrypted {
  groupId: string;
  sessionId: string;
  content: Content;
  messageIndex: number;
  duplicate: boolean; // the same ciphertext decrypted before (a redelivery)
  inbound: [key: string, pickle: string]; // the moved replay record, to commit with it
}

export const deviceKey = (account: string, device: number): string => `${account}/${device}`;

export function rotationReason(
  policy: RotationPolicy,
  messagesSent: number,
  createdAtMs: number,
  nowMs: number,
  memberRemoved: boolean,
): RotationReason | null {
  if (memberRemoved) return "member_removed";
  if (messagesSent >= policy.maxMessages) return "max_messages";
  if (nowMs < createdAtMs) return "clock";
  if (nowMs - createdAtMs >= policy.maxAgeMs) return "max_age";
  return null;
}

export class GroupCrypto {
  constructor(
    private readonly state: CoreState,
    private readonly lib: Libolm,
    private readonly pickleKey: Uint8Array,
    private readonly policy: RotationPolicy = DEFAULT_POLICY,
  ) {}

  // Sending -------------------------------------------------------------------------------

  /** `devices`: the current devices of every member account; this device is skipped. */
  async prepare(
    groupId: string,
    devices: readonly PeerDeviceRow[],
    nowMs: number,
  ): Promise<GroupSendPlan> {
    const state = this.state;
    const targets = new Set(
      devices
        .filter((d) => !state.isMe(d.accountId, d.deviceId))
        .map((d) => deviceKey(d.accountId, d.deviceId)),
    );
    const row = await state.store.outboundSession(groupId);
    let session = row
      ? await OutboundGroupSession.fromPickle(this.lib, row.pickle, this.pickleKey)
      : null;
    let shared = new Set(row?.shared ?? []);
    let reason: RotationReason | null = null;
    if (!session || !row) reason = "new";
    else {
      // A device that holds the key but is no longer a member's device: as a removal.
      const removed = row.rotate || [...shared].some((d) => !targets.has(d));
      reason = rotationReason(
        this.policy,
        session.messageIndex,
        session.createdAtMs,
        nowMs,
        removed,
      );
    }
    if (reason !== null) {
      session?.free();
      session = OutboundGroupSession.create(this.lib, this.pickleKey, nowMs);
      shared = new Set();
      // Stored before any share exists: a crash cannot lose a key already handed out.
      await state.store.commit({
        outbound: [
          {
            groupId,
            sessionId: session.sessionId,
            pickle: await session.pickle(),
            rotate: false,
            shared: [],
          },
        ],
      });
    }
    const s = session!;
    const content = encodeContent({
      t: "group_key",
      group: groupId,
      session: s.sessionId,
      key: s.sessionKey(),
      sig: state.olm.sign(groupKeyPayload(groupId, s.sessionId)),
    });
    const sessionId = s.sessionId;
    s.free();
    const shares = [...targets]
      .filter((d) => !shared.has(d))
      .sort()
      .map((d) => {
        const cut = d.lastIndexOf("/");
        return { accountId: d.slice(0, cut), deviceId: Number(d.slice(cut + 1)), content };
      });
    return { groupId, sessionId, rotated: reason, shares };
  }

  /** These devices were given the session (their share frames were stored by the server). */
  async markShared(groupId: string, sessionId: string, devices: Iterable<string>): Promise<void> {
    const row = await this.state.store.outboundSession(groupId);
    if (!row || row.sessionId !== sessionId) return; // rotated meanwhile
    const shared = new Set([...row.shared, ...devices]);
    await this.state.store.commit({ outbound: [{ ...row, shared: [...shared].sort() }] });
  }

  /** The kind-2 body of an encoded content; the ratchet is stored before it is returned. */
  async encrypt(groupId: string, content: Uint8Array): Promise<Uint8Array> {
    const row = await this.state.store.outboundSession(groupId);
    if (!row || row.rotate)
      throw new CryptoError("the group's outbound session must be prepared first", BAD_KEY);
    const session = await OutboundGroupSession.fromPickle(this.lib, row.pickle, this.pickleKey);
    try {
      if (session.messageIndex >= this.policy.maxMessages)
        throw new CryptoError("the group's outbound session must rotate first", BAD_KEY);
      const ciphertext = session.encrypt(content);
      const next: OutboundSessionRow = { ...row, pickle: await session.pickle() };
      await this.state.store.commit({ outbound: [next] });
      return encodeGroupMessage({ groupId, sessionId: session.sessionId, ciphertext });
    } finally {
      session.free();
    }
  }

  /** A member left or was removed: the next `prepare` starts a new session. */
  async memberRemoved(groupId: string): Promise<void> {
    const row = await this.state.store.outboundSession(groupId);
    if (row && !row.rotate) await this.state.store.commit({ outbound: [{ ...row, rotate: true }] });
  }

  // Receiving -----------------------------------------------------------------------------

  async #senderEd25519(account: string, device: number): Promise<string> {
    for (const row of await this.state.store.peerDevices(account))
      if (row.deviceId === device) return row.ed25519;
    throw new SignatureError(`group key from unknown device ${device} of ${account.slice(0, 8)}`);
  }

  /** Store the session a group_key (decrypted from Olm, so from this very device) carries;
   * false when it was known (the first copy is kept, with its replay record). */
  async receiveKey(sender: string, device: number, key: GroupKey): Promise<boolean> {
    const ed25519 = await this.#senderEd25519(sender, device);
    const ident = inboundKey(key.group, sender, device, key.session);
    if ((await this.state.store.inboundSession(ident)) !== null) return false;
    const session = await InboundGroupSession.fromGroupKey(this.lib, {
      groupId: key.group,
      sessionId: key.session,
      sessionKey: key.key,
      signature: key.sig,
      senderEd25519: ed25519,
      pickleKey: this.pickleKey,
    });
    try {
      await this.state.store.commit({ inbound: [[ident, await session.pickle()]] });
    } finally {
      session.free();
    }
    return true;
  }

  /** Decrypt a kind-2 body from (sender, device). DecryptError `unknown_session` when no key
   * from that device came yet, `unknown_index` for a late joiner, `replayed`, `decrypt_failed`. */
  async decrypt(sender: string, device: number, body: Uint8Array): Promise<GroupDecrypted> {
    const message = decodeGroupMessage(body);
    const ident = inboundKey(message.groupId, sender, device, message.sessionId);
    const pickle = await this.state.store.inboundSession(ident);
    if (pickle === null)
      throw new DecryptError("no key for this group session from that device yet", UNKNOWN_SESSION);
    const session = await InboundGroupSession.fromPickle(this.lib, pickle, this.pickleKey);
    try {
      const plain = session.decrypt(message.ciphertext);
      const content = decodeContent(plain.plaintext);
      checkContentGroup(content, message.groupId);
      return {
        groupId: message.groupId,
        sessionId: message.sessionId,
        content,
        messageIndex: plain.messageIndex,
        duplicate: plain.duplicate,
        inbound: [ident, await session.pickle()],
      };
    } finally {
      session.free();
    }
  }

  // Group state keys ----------------------------------------------------------------------

  /** A fresh state key at the next epoch, stored; to be told to every member. */
  async newStateKey(groupId: string): Promise<GroupStateKey> {
    const latest = await this.state.store.latestStateKey(groupId);
    const epoch = latest ? latest[0] + 1 : 0;
    if (epoch > MAX_EPOCH)
      throw new CryptoError("the group has used every state key epoch", BAD_KEY);
    const key = globalThis.crypto.getRandomValues(new Uint8Array(STATE_KEY_LEN));
    await this.state.store.commit({ stateKeys: [{ groupId, epoch, key }] });
    return { t: "group_state_key", group: groupId, epoch, key: b64encode(key) };
  }

  /** Keep a state key that came over Olm or Megolm; the first key of an epoch wins. */
  async receiveStateKey(key: GroupStateKey): Promise<boolean> {
    if ((await this.state.store.stateKey(key.group, key.epoch)) !== null) return false;
    const raw = b64decode(key.key);
    if (raw.length !== STATE_KEY_LEN)
      throw new CryptoError("a group state key must be 32 bytes", BAD_KEY);
    await this.state.store.commit({
      stateKeys: [{ groupId: key.group, epoch: key.epoch, key: raw }],
    });
    return true;
  }
}

/** A text, rich action or update inside a group session must name that group (spec E). */
function checkContentGroup(content: Content, groupId: string): void {
  const named = (content as { group?: unknown }).group;
  const kinds = ["text", "reaction", "edit", "delete", "group_update", "group_state_key"];
  if (kinds.includes(content.t) && named !== groupId)
    throw new DecryptError(`a group ${content.t} names another group`);
}
