/**
 * Approving a new device of this account from the browser (the primary's side of linking;
 * mirrors src/porch/client/linking.py `approve_link` and `porch devices link URI`;
 * docs/protocol.md section 7, "Linking a device", step 2). The browser reads the porch://link
 * URI the new device shows, fetches a one-time provisioning code, encrypts a ProvisionMessage
 * (account id, master seed, phone, username, code, this device's id) to the URI's key and puts
 * it into the channel. It publishes nothing: the new device signs and publishes the next device
 * list itself, and this browser's next send learns of it (the server's mismatched_devices
 * answer, core/outbox.ts), so sent copies reach it from then on.
 */

import { ClientError } from "../core/errors";
import { ProvisioningError } from "../crypto/errors";
import {
  type ProvisioningUri,
  encryptProvision,
  parseProvisioningUri,
} from "../crypto/provisioning";
import { b64encode, b64urlencode } from "../protocol/codec";
import type { IdbStore } from "../store/idb";
import type { HttpApi } from "./http";
import type { ProfileConfig } from "./profile";

/** The URI another device shows; ClientError `usage` with a sentence if it is not one
 * (linking.py `parse_link_uri`). */
export function parseLinkUri(text: string): ProvisioningUri {
  try {
    return parseProvisioningUri(text.trim());
  } catch (exc) {
    if (!(exc instanceof ProvisioningError)) throw exc;
    throw new ClientError(
      `that is not a device-linking address (${exc.message}); copy the whole ` +
        "porch://link?... text the new device shows",
      "usage",
    );
  }
}

/**
 * What to compare with the new device before giving it the account's keys: the first twelve
 * characters of its key, in groups of four. They are the start of the `pub_key=` value in the
 * URI the new device shows (a terminal prints it; the browser's link screen shows it too), so
 * a URI swapped in transit shows another check.
 */
export function keyCheck(uri: ProvisioningUri): string {
  const text = b64urlencode(uri.publicKey).slice(0, 12);
  return text.match(/.{1,4}/g)!.join(" ");
}

/** Give the device that showed `uri` this account's keys (Client.link_device). */
export async function approveLink(
  api: HttpApi,
  store: IdbStore,
  config: ProfileConfig,
  uri: ProvisioningUri,
): Promise<void> {
  const seed = await store.getSecret("master_key");
  if (!seed) throw new ClientError("this browser has no master key; link it again", "profile");
  const code = await api.provisioningCode();
  const envelope = await encryptProvision(
    {
      accountId: config.accountId,
      masterSeed: seed, // its length is checked in encryptProvision, before anything is sent
      phone: config.phone,
      username: config.username,
      provisioningCode: code,
      primaryDeviceId: config.deviceId,
    },
    uri.publicKey,
  );
  await api.fillChannel(uri.channelId, b64encode(envelope));
}
