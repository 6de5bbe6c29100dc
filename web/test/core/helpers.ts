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
}

export async function makePeer(accountId: string): Promise<Peer> {
  lib ??= await loadOlm();
  const store = await IdbStore.open(`test-${accountId}-${dbs++}`);
  const olm = OlmMachine.create(lib, new Uint8Array(32).fill(3));
  const master = await MasterKey.fromPrivateBytes(
    globalThis.crypto.getRandomValues(new Uint8Array(32)),
  );
  const claimable = olm.generateOneTimeKeys(5);
  const core = new ClientCore(store, olm, accountId, 1);
  return { core, store, olm, master, accountId, registrationId: 4242, claimable };
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
