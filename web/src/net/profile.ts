/**
 * A browser profile: registering one (mirrors src/porch/client/registration.py) and opening
 * it again after a reload. Registration makes device 1 of the account, the Olm account, the
 * master key that signs the device keys (docs/protocol.md section 7) and the first one-time
 * keys, uploads them and publishes the account's first signed device list.
 */

import { ClientCore, ONE_TIME_KEYS_TARGET } from "../core/state";
import { ClientError } from "../core/errors";
import { parsePeer } from "../core/context";
import { OlmMachine, PICKLE_KEY_LEN } from "../crypto/olm";
import { type Libolm, loadOlm } from "../crypto/olm_raw";
import { MasterKey, deviceListPayload } from "../crypto/signing";
import { b64encode, utf8decode, utf8encode } from "../protocol/codec";
import type { IdbStore } from "../store/idb";
import { HttpApi, type RegisteredDevice } from "./http";

export interface ProfileConfig {
  server: string;
  accountId: string;
  deviceId: number;
  registrationId: number;
  phone: string;
  username: string | null;
}

export interface OpenProfile {
  config: ProfileConfig;
  core: ClientCore;
  api: HttpApi;
  password: string;
}

export const USERNAME_RE = /^[a-z][a-z0-9_]{2,31}$/; // as the server checks it

export function normalizePhone(raw: string): string {
  const phone = raw.replace(/[\s().-]/g, "");
  if (!/^\+[1-9]\d{6,14}$/.test(phone)) {
    throw new ClientError(
      `"${raw}" is not a phone number; type it with its country code, like +14155550100`,
      "usage",
    );
  }
  return phone;
}

export function wsUrl(server: string): string {
  return `${server.replace(/^http/, "ws")}/v1/ws`;
}

let olmLib: Promise<Libolm> | null = null;
function libolm(): Promise<Libolm> {
  return (olmLib ??= loadOlm());
}

/** A device's keys, made and uploaded: what registering and linking share. */
export interface NewDevice {
  olm: OlmMachine;
  master: MasterKey;
  api: HttpApi;
  lib: Libolm; // with the pickle key, what a core needs for more than 1:1 Olm (groups)
  pickleKey: Uint8Array;
}

/**
 * Make this browser's Olm account, keep its secrets, sign its device binding with the
 * account's master key (`seed`) and upload its identity, one-time and fallback keys.
 */
export async function setUpDevice(
  store: IdbStore,
  server: string,
  reg: RegisteredDevice,
  seed: Uint8Array,
): Promise<NewDevice> {
  const lib = await libolm();
  const pickleKey = globalThis.crypto.getRandomValues(new Uint8Array(PICKLE_KEY_LEN));
  const olm = OlmMachine.create(lib, pickleKey);
  const master = await MasterKey.fromPrivateBytes(seed);
  const oneTimeKeys = olm.generateOneTimeKeys(ONE_TIME_KEYS_TARGET);
  const fallbackKey = olm.generateFallbackKey();
  await store.putSecret("password", utf8encode(reg.password));
  await store.putSecret("master_key", seed);
  await store.putSecret("pickle_key", pickleKey);
  await store.putSecret("olm_account", utf8encode(olm.pickleAccount()));
  olm.clearDirty();
  const signature = await master.signDevice(
    reg.accountId,
    reg.deviceId,
    reg.registrationId,
    olm.curve25519,
    olm.ed25519,
  );
  const api = new HttpApi(server).withCredentials(reg);
  await api.uploadKeys({
    identity: {
      master_key: master.publicB64,
      curve25519: olm.curve25519,
      ed25519: olm.ed25519,
      signature,
    },
    oneTimeKeys,
    fallbackKey,
  });
  return { olm, master, api, lib, pickleKey };
}

/** Save the profile (last: a profile means a complete device) and open its core. */
export async function finishProfile(
  store: IdbStore,
  config: ProfileConfig,
  device: NewDevice,
  password: string,
): Promise<OpenProfile> {
  // Written last: a profile means a complete registration (as profile.json in Python).
  await store.putSecret("profile", utf8encode(JSON.stringify(config)));
  const core = new ClientCore(store, device.olm, config.accountId, config.deviceId);
  core.enableGroups(device.lib, device.pickleKey);
  return { config, core, api: device.api, password };
}

/** Set up this browser as the registered device (after `verify` succeeded). */
export async function createProfile(
  store: IdbStore,
  server: string,
  phone: string,
  reg: RegisteredDevice,
  username: string | null,
): Promise<OpenProfile> {
  const seed = globalThis.crypto.getRandomValues(new Uint8Array(32));
  const device = await setUpDevice(store, server, reg, seed);
  const { olm, master, api } = device;
  // The account's first signed device list: version 1, this device (spec C).
  const devices = [
    { deviceId: reg.deviceId, registrationId: reg.registrationId, ed25519: olm.ed25519 },
  ];
  const payload = deviceListPayload(reg.accountId, 1n, devices);
  await api.putDeviceList(
    b64encode(payload),
    await master.signDeviceList(reg.accountId, 1n, devices),
  );
  let claimed: string | null = null;
  if (username) claimed = await api.setUsername(username);
  const config: ProfileConfig = {
    server,
    accountId: reg.accountId,
    deviceId: reg.deviceId,
    registrationId: reg.registrationId,
    phone,
    username: claimed,
  };
  return finishProfile(store, config, device, reg.password);
}

/** The profile this browser registered, with its Olm state; null when there is none. */
export async function openProfile(store: IdbStore): Promise<OpenProfile | null> {
  const raw = await store.getSecret("profile");
  if (!raw) return null;
  const config = JSON.parse(utf8decode(raw)) as ProfileConfig;
  const password = utf8decode((await store.getSecret("password"))!);
  const pickleKey = (await store.getSecret("pickle_key"))!;
  const lib = await libolm();
  const olm = OlmMachine.fromPickle(
    lib,
    utf8decode((await store.getSecret("olm_account"))!),
    pickleKey,
  );
  for (const [peer, pickle] of await store.sessions()) olm.loadSessions(parsePeer(peer), pickle);
  const core = new ClientCore(store, olm, config.accountId, config.deviceId);
  core.enableGroups(lib, pickleKey);
  const api = new HttpApi(config.server).withCredentials({ ...config, password });
  return { config, core, api, password };
}
