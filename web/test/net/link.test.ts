import { describe, expect, it } from "vitest";
import { IdentityError } from "../../src/core/errors";
import { listedDevices } from "../../src/net/link";
import { MasterKey } from "../../src/crypto/signing";
import { accountBundle, makeDevice } from "../core/helpers";

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";

describe("the account's current device list, before publishing the next one", () => {
  it("is the signed list's version and devices, checked against the master key", async () => {
    const one = await makeDevice(ALICE, 1);
    const two = await makeDevice(ALICE, 2, one.master);
    const bundle = await accountBundle([one, two], null);
    const [version, devices] = await listedDevices(bundle, one.master.publicB64);
    expect(version).toBe(1n);
    expect(devices.map((d) => [d.deviceId, d.registrationId, d.ed25519])).toEqual([
      [1, one.registrationId, one.olm.ed25519],
      [2, two.registrationId, two.olm.ed25519],
    ]);
  });

  it("refuses a list another key signed, and another account's list", async () => {
    const one = await makeDevice(ALICE, 1);
    const bundle = await accountBundle([one], null);
    const other = await MasterKey.fromPrivateBytes(new Uint8Array(32).fill(9));
    await expect(listedDevices(bundle, other.publicB64)).rejects.toThrow(IdentityError);
    const moved = { ...bundle, accountId: "b7f3c2a0-0000-4000-8000-00000000beef" };
    await expect(listedDevices(moved, one.master.publicB64)).rejects.toThrow(/another account/);
  });

  it("without a list: version 0 and only the devices whose binding verifies", async () => {
    const one = await makeDevice(ALICE, 1);
    const two = await makeDevice(ALICE, 2, one.master);
    const bundle = await accountBundle([one, two], null);
    const forged = { ...bundle.devices[1]!, signature: bundle.devices[0]!.signature };
    const unlisted = { ...bundle, deviceList: null, devices: [bundle.devices[0]!, forged] };
    const [version, devices] = await listedDevices(unlisted, one.master.publicB64);
    expect([version, devices.map((d) => d.deviceId)]).toEqual([0n, [1]]);
  });
});
