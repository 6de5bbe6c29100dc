/**
 * Linking this browser to an existing account, and the account's signed device list (mirrors
 * src/porch/client/linking.py; docs/protocol.md section 7, "Linking a device"). The browser
 * (the new device) opens a provisioning channel, shows the porch://link URI, waits for the
 * primary's encrypted ProvisionMessage (`porch devices link URI` on a terminal), links itself
 * with the code in it, makes its own keys, signs its device binding with the account's master
 * key and publishes the next signed device list, itself included. Removing a device publishes
 * a list without it.
 */

import { ClientError, IdentityError } from "../core/errors";
import { CryptoError, SignatureError } from "../crypto/errors";
import { ProvisioningKeyPair, buildProvisioningUri } from "../crypto/provisioning";
import {
  type ListedDevice,
  MasterKey,
  PayloadError,
  deviceListPayload,
  verifyDeviceBinding,
  verifyDeviceList,
} from "../crypto/signing";
import { b64decode, b64encode } from "../protocol/codec";
import type { Bundle } from "../core/types";
import type { IdbStore } from "../store/idb";
import { HttpApi } from "./http";
import { type OpenProfile, type ProfileConfig, finishProfile, setUpDevice } from "./profile";

export const LINK_TIMEOUT_MS = 600_000; // the server keeps a channel ten minutes
export const POLL_WAIT = 10; // seconds per long poll: inside HttpApi's 20 s timeout
export const MAX_LINK_NAME = 64; // POST /v1/devices/link refuses a longer name

// The device list ---------------------------------------------------------------------------

/** (version, devices) of the account's current list, checked against its master key; for an
 * account without one, (0, every device whose binding verifies). */
export async function listedDevices(
  bundle: Bundle,
  masterPublic: string,
): Promise<[bigint, ListedDevice[]]> {
  if (bundle.deviceList) {
    let list;
    try {
      const payload = b64decode(bundle.deviceList.list);
      list = await verifyDeviceList(masterPublic, payload, bundle.deviceList.signature);
    } catch {
      throw new IdentityError("the server's device list for this account does not verify");
    }
    if (list.accountId !== bundle.accountId)
      throw new IdentityError("the server gave another account's device list");
    return [list.version, [...list.devices]];
  }
  const devices: ListedDevice[] = [];
  for (const d of bundle.devices) {
    try {
      await verifyDeviceBinding(
        masterPublic,
        bundle.accountId,
        d.deviceId,
        d.registrationId,
        d.curve25519,
        d.ed25519,
        d.signature,
      );
    } catch (exc) {
      if (exc instanceof SignatureError || exc instanceof PayloadError) continue;
      throw exc;
    }
    devices.push({ deviceId: d.deviceId, registrationId: d.registrationId, ed25519: d.ed25519 });
  }
  return [0n, devices];
}

/** Publish the next version of the account's signed list, with `add` and without `remove`;
 * only devices the server still has keys for stay listed. Returns the version. */
export async function publishDeviceList(
  api: HttpApi,
  master: MasterKey,
  accountId: string,
  change: { add?: ListedDevice; remove?: number },
): Promise<bigint> {
  const bundle = await api.getKeys(accountId);
  const [version, devices] = await listedDevices(bundle, master.publicB64);
  const keyed = new Set(bundle.devices.map((d) => d.deviceId));
  let kept = devices.filter((d) => keyed.has(d.deviceId) && d.deviceId !== change.remove);
  const add = change.add;
  if (add) kept = [...kept.filter((d) => d.deviceId !== add.deviceId), add];
  const payload = deviceListPayload(accountId, version + 1n, kept);
  await api.putDeviceList(b64encode(payload), await master.sign(payload));
  return version + 1n;
}

async function masterOf(store: IdbStore): Promise<MasterKey> {
  const seed = await store.getSecret("master_key");
  if (!seed) throw new ClientError("this browser has no master key; link it again", "profile");
  return MasterKey.fromPrivateBytes(seed);
}

/** Revoke another device of the account (its connection ends at once), then publish the
 * list without it (linking.py `remove_device`). */
export async function removeDevice(
  api: HttpApi,
  store: IdbStore,
  config: ProfileConfig,
  deviceId: number,
): Promise<void> {
  if (deviceId === config.deviceId) {
    throw new ClientError(
      "this device cannot remove itself; remove it from another device",
      "usage",
    );
  }
  await api.deleteDevice(deviceId);
  await publishDeviceList(api, await masterOf(store), config.accountId, { remove: deviceId });
}

/**
 * This browser leaves the account (Settings, "Sign out"): the next signed list, without this
 * device, goes with the request, and the server removes the device and its credential
 * (`POST /v1/devices/leave`; docs/protocol.md, "Linked devices"). "only" when no other device
 * of the account has keys: a list cannot be empty, so the server keeps the device; signing out
 * is then local only, as it was before.
 */
export async function leaveAccount(
  api: HttpApi,
  store: IdbStore,
  config: ProfileConfig,
): Promise<"left" | "only"> {
  const master = await masterOf(store);
  const bundle = await api.getKeys(config.accountId);
  const [version, devices] = await listedDevices(bundle, master.publicB64);
  const keyed = new Set(bundle.devices.map((d) => d.deviceId));
  const kept = devices.filter((d) => keyed.has(d.deviceId) && d.deviceId !== config.deviceId);
  if (kept.length === 0) return "only";
  const payload = deviceListPayload(config.accountId, version + 1n, kept);
  await api.leave(b64encode(payload), await master.sign(payload));
  return "left";
}

// The new device ------------------------------------------------------------------------------

/** A link in progress: the URI to show, and the wait for a device of the account to approve. */
export interface PendingLink {
  uri: string;
  deadline: number; // ms since the epoch: the channel is gone then
  /** The linked profile, once approved; ClientError `timeout`, `cancelled` or the cause. */
  approved(): Promise<OpenProfile>;
  cancel(): void;
}

/** Open a provisioning channel and make the URI (the first step of `porch link`). */
export async function startLink(
  store: IdbStore,
  server: string,
  name: string,
  now: () => number = Date.now,
): Promise<PendingLink> {
  const deviceName = name.trim();
  if (deviceName.length > MAX_LINK_NAME) {
    // Checked first: the server refuses it only at the last step, after the approval.
    throw new ClientError(`a device name is at most ${MAX_LINK_NAME} characters`, "usage");
  }
  const keypair = await ProvisioningKeyPair.generate();
  const api = new HttpApi(server);
  const channel = await api.openChannel();
  const deadline = now() + LINK_TIMEOUT_MS;
  let cancelled = false;
  const stopped = () => {
    if (cancelled) throw new ClientError("linking was cancelled", "cancelled");
  };
  return {
    uri: buildProvisioningUri(channel, keypair.publicBytes, deviceName || null),
    deadline,
    cancel: () => {
      cancelled = true;
    },
    async approved() {
      let body: string | null = null;
      while (body === null) {
        stopped();
        const left = deadline - now();
        if (left <= 0) {
          throw new ClientError(
            "no device approved the link within 10 minutes; start again and, on a device of " +
              "the account, run `porch devices link URI`",
            "timeout",
          );
        }
        body = await api.waitChannel(channel, Math.min(POLL_WAIT, Math.floor(left / 1000)));
      }
      stopped(); // a message that came after a cancel is dropped: its code expires unused
      let message;
      try {
        message = await keypair.decrypt(b64decode(body));
      } catch (exc) {
        if (!(exc instanceof CryptoError) && !(exc instanceof ClientError)) throw exc;
        throw new IdentityError(`the linking message could not be read: ${exc.message}`);
      }
      const reg = await api.link(message.provisioningCode, deviceName);
      if (reg.accountId !== message.accountId)
        throw new IdentityError("the server linked this browser to another account than offered");
      const device = await setUpDevice(store, server, reg, message.masterSeed);
      const me = {
        deviceId: reg.deviceId,
        registrationId: reg.registrationId,
        ed25519: device.olm.ed25519,
      };
      await publishDeviceList(device.api, device.master, reg.accountId, { add: me });
      // One's own master key is known, not learnt: pin it, so the other devices' keys (for
      // sent copies) verify against it from the first fetch.
      await store.commit({
        contacts: [
          {
            accountId: reg.accountId,
            label: message.username ? `@${message.username}` : message.phone,
            masterKey: device.master.publicB64,
            deviceListVersion: null,
            deviceIds: [],
          },
        ],
      });
      const config: ProfileConfig = {
        server,
        accountId: reg.accountId,
        deviceId: reg.deviceId,
        registrationId: reg.registrationId,
        phone: message.phone,
        username: message.username,
      };
      return finishProfile(store, config, device, reg.password);
    },
  };
}
