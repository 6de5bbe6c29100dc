/**
 * Two real profiles (libolm, WebCrypto, IndexedDB on fake-indexeddb) and a tiny relay that
 * does what the server does with a `send` frame: turns each device message into the
 * recipient device's envelope. Bundles are built from the peers' real keys and signatures.
 */

import "fake-indexeddb/auto";
import { ClientCore } from "../../src/core/state";
import type { Bundle } from "../../src/core/types";
import { OlmMachine } from "../../src/crypto/olm";
import { type Libolm, loadOlm } from "../../src/crypto/olm_raw";
import { MasterKey, deviceListPayload } from "../../src/crypto/signing";
import { b64encode } from "../../src/protocol/codec";
import type { SendFrame } from "../../src/protocol/frames.gen";
import { IdbStore } from "../../src/store/idb";

let lib: Libolm | null = null;
let dbs = 0;

export interface Peer {
  core: ClientCore;
  store: IdbStore;
  olm: OlmMachine;
  master: MasterKey;
  accountId: string;
  registrationId: number;
  claimable: ReturnType<OlmMachine["generateOneTimeKeys"]>;
  dbName?: string; // the IndexedDB database, to open it again as a reload does
}

export async function makePeer(accountId: string): Promise<Peer> {
  lib ??= await loadOlm();
  const dbName = `test-${accountId}-${dbs++}`;
  const store = await IdbStore.open(dbName);
  const olm = OlmMachine.create(lib, new Uint8Array(32).fill(3));
  const master = await MasterKey.fromPrivateBytes(
    globalThis.crypto.getRandomValues(new Uint8Array(32)),
  );
  const claimable = olm.generateOneTimeKeys(5);
  const core = new ClientCore(store, olm, accountId, 1);
  return { core, store, olm, master, accountId, registrationId: 4242, claimable, dbName };
}

/** What the server's key directory answers for `peer` (claimed: with a one-time key). */
export async function bundleOf(peer: Peer, claimed: boolean): Promise<Bundle> {
  const { olm, master, accountId, registrationId } = peer;
  const signature = await master.signDevice(
    accountId,
    1,
    registrationId,
    olm.curve25519,
    olm.ed25519,
  );
  const listed = [{ deviceId: 1, registrationId, ed25519: olm.ed25519 }];
  const payload = deviceListPayload(accountId, 1n, listed);
  const otk = claimed ? peer.claimable.shift()! : null;
  return {
    accountId,
    masterKey: master.publicB64,
    devices: [
      {
        deviceId: 1,
        registrationId,
        curve25519: olm.curve25519,
        ed25519: olm.ed25519,
        signature,
        oneTimeKey: otk,
      },
    ],
    deviceList: {
      list: b64encode(payload),
      signature: await master.signDeviceList(accountId, 1n, listed),
    },
  };
}

let envelopeIds = 1;

/** The envelope the server would deliver to `to` for a send frame from `from`. */
export function envelopeFor(frame: SendFrame, from: string, to: string) {
  const dest = frame.destinations.find((d) => d.account === to)!;
  const msg = dest.devices[0];
  return {
    type: "envelope",
    id: frame.ephemeral ? 0 : envelopeIds++,
    from,
    from_device: 1,
    ts: Date.now(),
    kind: msg.kind,
    body: msg.body,
  };
}

// wlink: several devices of one account (sent copies, linking) ------------------------------

export interface Device extends Peer {
  deviceId: number;
}

/** Device `deviceId` of `accountId`; pass one device's `master` to the others of its account. */
export async function makeDevice(
  accountId: string,
  deviceId: number,
  master?: MasterKey,
): Promise<Device> {
  lib ??= await loadOlm();
  const store = await IdbStore.open(`test-${accountId}-${deviceId}-${dbs++}`);
  const olm = OlmMachine.create(lib, new Uint8Array(32).fill(deviceId));
  const key =
    master ??
    (await MasterKey.fromPrivateBytes(globalThis.crypto.getRandomValues(new Uint8Array(32))));
  const core = new ClientCore(store, olm, accountId, deviceId);
  const claimable = olm.generateOneTimeKeys(5);
  return {
    core,
    store,
    olm,
    master: key,
    accountId,
    registrationId: 4000 + deviceId,
    claimable,
    deviceId,
  };
}

/** The key directory's bundle of an account's devices, all listed; `claimed` ones carry a
 * one-time key, and only they are in a claim's answer. */
export async function accountBundle(devices: Device[], claimed: number[] | null): Promise<Bundle> {
  const { accountId, master } = devices[0]!;
  const listed = devices.map((d) => ({
    deviceId: d.deviceId,
    registrationId: d.registrationId,
    ed25519: d.olm.ed25519,
  }));
  const payload = deviceListPayload(accountId, 1n, listed);
  const shown = claimed ? devices.filter((d) => claimed.includes(d.deviceId)) : devices;
  return {
    accountId,
    masterKey: master.publicB64,
    devices: await Promise.all(
      shown.map(async (d) => ({
        deviceId: d.deviceId,
        registrationId: d.registrationId,
        curve25519: d.olm.curve25519,
        ed25519: d.olm.ed25519,
        signature: await master.signDevice(
          accountId,
          d.deviceId,
          d.registrationId,
          d.olm.curve25519,
          d.olm.ed25519,
        ),
        oneTimeKey: claimed ? d.claimable.shift()! : null,
      })),
    ),
    deviceList: { list: b64encode(payload), signature: await master.sign(payload) },
  };
}

/** The envelope the server would deliver to device `to` of `account` for a send frame. */
export function envelopeTo(frame: SendFrame, from: Device, account: string, to: number) {
  const msg = frame.destinations
    .find((d) => d.account === account)!
    .devices.find((m) => m.device === to)!;
  return {
    type: "envelope",
    id: frame.ephemeral ? 0 : envelopeIds++,
    from: from.accountId,
    from_device: from.deviceId,
    ts: Date.now(),
    kind: msg.kind,
    body: msg.body,
  };
}
