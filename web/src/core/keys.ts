/**
 * Peers' keys from the key directory: verify, cache, start sessions (mirrors
 * src/porch/client/core/keys.py). The chain is docs/protocol.md section 7's: the master key
 * signs each device's keys, each device key signs its one-time keys, and the master key signs
 * the account's device list. The first master key seen is pinned; a later different one that
 * verifies is a changed identity: told (a notice in the conversation), never silent.
 */

import { b64decode, b64encode } from "../protocol/codec";
import { SignatureError } from "../crypto/errors";
import { verifyDeviceBinding, verifyDeviceList, verifyOneTimeKey } from "../crypto/signing";
import type { DeviceList } from "../crypto/signing";
import type { CoreState } from "./context";
import { IdentityError } from "./errors";
import type { Bundle, Contact, PeerDeviceRow } from "./types";

export function deviceRows(bundle: Bundle): PeerDeviceRow[] {
  return bundle.devices.map((d) => ({
    accountId: bundle.accountId,
    deviceId: d.deviceId,
    registrationId: d.registrationId,
    curve25519: d.curve25519,
    ed25519: d.ed25519,
  }));
}

function short(accountId: string): string {
  return accountId.slice(0, 8);
}

async function verifyChain(bundle: Bundle, checkOneTimeKeys: boolean): Promise<void> {
  try {
    for (const d of bundle.devices) {
      await verifyDeviceBinding(
        bundle.masterKey,
        bundle.accountId,
        d.deviceId,
        d.registrationId,
        d.curve25519,
        d.ed25519,
        d.signature,
      );
      const k = d.oneTimeKey;
      if (checkOneTimeKeys && k) {
        await verifyOneTimeKey(d.ed25519, k.keyId, k.curve25519, k.fallback, k.signature);
      }
    }
  } catch (exc) {
    if (!(exc instanceof SignatureError) && !(exc instanceof RangeError)) throw exc;
    throw new IdentityError(
      `the key directory returned keys for ${short(bundle.accountId)} that do not verify: ${exc.message}`,
    );
  }
}

async function checkDeviceList(bundle: Bundle, before: Contact | null): Promise<DeviceList | null> {
  const account = bundle.accountId;
  if (!bundle.deviceList) {
    if (before?.deviceListVersion) {
      throw new IdentityError(
        `the key directory no longer shows the device list of ${short(account)}; not trusting its devices`,
      );
    }
    return null;
  }
  let listed: DeviceList;
  try {
    const payload = b64decode(bundle.deviceList.list);
    listed = await verifyDeviceList(bundle.masterKey, payload, bundle.deviceList.signature);
  } catch {
    throw new IdentityError(`the device list of ${short(account)} is not signed by its master key`);
  }
  if (listed.accountId !== account) {
    throw new IdentityError(
      `the key directory gave another account's device list for ${short(account)}`,
    );
  }
  if (before?.deviceListVersion && listed.version < BigInt(before.deviceListVersion)) {
    throw new IdentityError(
      `the key directory gave an older device list of ${short(account)} (version ${listed.version}, after ${before.deviceListVersion}); not trusting it`,
    );
  }
  return listed;
}

/**
 * Verify a bundle and pin its master key; the bundle keeps only the devices its signed device
 * list names (spec C), so the server cannot add a device the account's master key did not list.
 */
export async function verifyBundle(
  state: CoreState,
  bundle: Bundle,
  checkOneTimeKeys: boolean,
): Promise<Bundle> {
  await verifyChain(bundle, checkOneTimeKeys);
  const stored = await state.store.contact(bundle.accountId);
  const pinned = stored?.masterKey ?? null;
  const sameIdentity = pinned === null || pinned === bundle.masterKey;
  const contact: Contact = stored ?? {
    accountId: bundle.accountId,
    label: short(bundle.accountId),
    masterKey: null,
    deviceListVersion: null,
    deviceIds: [],
  };
  if (!sameIdentity) {
    // As Signal does by default: warn (the safety number changed), then carry on.
    const now = state.clock();
    await state.store.commit({
      messages: [
        {
          peer: bundle.accountId,
          clientId: `identity-${now}`,
          outgoing: false,
          device: 0,
          ts: now,
          body: `${contact.label}'s safety number changed; compare it again to be sure it is them`,
          status: "notice",
          serverTs: now,
          unread: false,
        },
      ],
    });
    state.emit({ type: "IdentityChanged", accountId: bundle.accountId });
  }
  // A changed master key (re-registration) starts the account's lists afresh.
  const listed = await checkDeviceList(bundle, sameIdentity ? stored : null);
  const updated: Contact = {
    ...contact,
    masterKey: bundle.masterKey,
    deviceListVersion: listed ? listed.version.toString() : null,
    deviceIds: listed ? listed.devices.map((d) => d.deviceId) : contact.deviceIds,
  };
  await state.store.commit({ contacts: [updated] });
  if (!listed) return bundle;
  const keys = new Set(listed.devices.map((d) => `${d.deviceId}/${d.registrationId}/${d.ed25519}`));
  const devices = bundle.devices.filter((d) =>
    keys.has(`${d.deviceId}/${d.registrationId}/${b64encode(b64decode(d.ed25519))}`),
  );
  return { ...bundle, devices };
}

/** Verify a fetched (unclaimed) bundle and cache its devices; changed keys void sessions. */
export async function cacheDirectory(
  state: CoreState,
  bundle: Bundle,
  replace: boolean,
): Promise<void> {
  const verified = await verifyBundle(state, bundle, false);
  const cached = new Map(
    (await state.store.peerDevices(verified.accountId)).map((d) => [d.deviceId, d]),
  );
  const rows = deviceRows(verified);
  for (const row of rows) {
    const old = cached.get(row.deviceId);
    if (old && old.curve25519 !== row.curve25519)
      state.olm.forgetPeer([row.accountId, row.deviceId]);
  }
  await state.commit({ devices: [{ accountId: verified.accountId, rows, replace }] });
}

export async function findDevice(
  state: CoreState,
  accountId: string,
  deviceId: number,
): Promise<PeerDeviceRow | null> {
  return (await state.store.peerDevices(accountId)).find((d) => d.deviceId === deviceId) ?? null;
}

/** Start an outbound session with each device of a claimed bundle (not this one). */
export async function startSessions(state: CoreState, bundle: Bundle): Promise<number[]> {
  const verified = await verifyBundle(state, bundle, true);
  const started: number[] = [];
  for (const d of verified.devices) {
    if (state.isMe(verified.accountId, d.deviceId)) continue;
    if (!d.oneTimeKey) {
      throw new IdentityError(
        `device ${d.deviceId} of ${short(verified.accountId)} has no keys left`,
      );
    }
    state.olm.createOutboundSession(
      [verified.accountId, d.deviceId],
      d.curve25519,
      d.oneTimeKey.curve25519,
    );
    started.push(d.deviceId);
  }
  await state.commit({
    devices: [{ accountId: verified.accountId, rows: deviceRows(verified), replace: false }],
  });
  return started;
}
