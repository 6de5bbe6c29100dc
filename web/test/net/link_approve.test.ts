import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { ClientError, ServerError } from "../../src/core/errors";
import { ProvisioningKeyPair, buildProvisioningUri } from "../../src/crypto/provisioning";
import { HttpApi } from "../../src/net/http";
import { approveLink, keyCheck, parseLinkUri } from "../../src/net/link_approve";
import type { ProfileConfig } from "../../src/net/profile";
import { b64decode, b64urlencode } from "../../src/protocol/codec";
import { IdbStore } from "../../src/store/idb";

const ACCOUNT = "b7f3c2a0-0000-4000-8000-00000000beef";
const CHANNEL = "3f0c2a8e-6c1b-4b5e-9a70-6d8f1e2b4c11";
const CONFIG: ProfileConfig = {
  server: "http://porch.test",
  accountId: ACCOUNT,
  deviceId: 3,
  registrationId: 77,
  phone: "+14155550100",
  username: "alice",
};
let n = 0;

/** A server that hands out one code and keeps what is put into the channel. */
function fakeServer(seen: Array<{ method: string; url: string; body: any }>, fillStatus = 204) {
  return async (url: string, init?: RequestInit) => {
    const body = init?.body ? JSON.parse(String(init.body)) : null;
    seen.push({ method: init?.method ?? "GET", url, body });
    if (url.endsWith("/v1/devices/provisioning_code"))
      return new Response(JSON.stringify({ code: "pc_0123456789abcdef", expires_ms: 1 }));
    if (fillStatus !== 204) {
      const error = { code: "not_found", message: "no such provisioning channel" };
      return new Response(JSON.stringify({ error }), { status: fillStatus });
    }
    return new Response(null, { status: 204 });
  };
}

describe("the porch://link address the new device shows", () => {
  it("parses a URI with spaces around it and shows its key check", async () => {
    const pair = await ProvisioningKeyPair.generate();
    const text = buildProvisioningUri(CHANNEL, pair.publicBytes, "tablet");
    const uri = parseLinkUri(`  ${text}\n`);
    expect([uri.channelId, uri.name]).toEqual([CHANNEL, "tablet"]);
    const check = keyCheck(uri);
    expect(check).toMatch(/^[A-Za-z0-9_-]{4} [A-Za-z0-9_-]{4} [A-Za-z0-9_-]{4}$/);
    // The start of pub_key= in the URI: what the new device's screen can be compared with.
    expect(text).toContain(`pub_key=${check.replace(/ /g, "")}`);
    const other = await ProvisioningKeyPair.generate();
    const swapped = parseLinkUri(buildProvisioningUri(CHANNEL, other.publicBytes, "tablet"));
    expect(keyCheck(swapped)).not.toBe(check);
  });

  it("refuses what is not one with a sentence that says what to copy", () => {
    for (const text of ["", "https://example.org", `porch://link?uuid=${CHANNEL}&v=1`]) {
      let thrown: unknown;
      try {
        parseLinkUri(text);
      } catch (exc) {
        thrown = exc;
      }
      expect(thrown).toBeInstanceOf(ClientError);
      expect((thrown as ClientError).code).toBe("usage");
      expect((thrown as ClientError).message).toMatch(/copy the whole porch:\/\/link/);
    }
  });
});

describe("approving a new device (the primary's side)", () => {
  it("puts a ProvisionMessage only the new device can read into its channel", async () => {
    const store = await IdbStore.open(`approve-${n++}`);
    const seed = globalThis.crypto.getRandomValues(new Uint8Array(32));
    await store.putSecret("master_key", seed);
    const seen: Array<{ method: string; url: string; body: any }> = [];
    const api = new HttpApi(
      CONFIG.server,
      { accountId: ACCOUNT, deviceId: 3, password: "pw" },
      fakeServer(seen),
    );
    const newDevice = await ProvisioningKeyPair.generate();
    const uri = parseLinkUri(buildProvisioningUri(CHANNEL, newDevice.publicBytes, "laptop"));
    await approveLink(api, store, CONFIG, uri);
    expect(seen.map((s) => [s.method, s.url.replace(CONFIG.server, "")])).toEqual([
      ["POST", "/v1/devices/provisioning_code"],
      ["PUT", `/v1/provisioning/${CHANNEL}`],
    ]);
    const message = await newDevice.decrypt(b64decode(seen[1]!.body.body));
    expect(message).toEqual({
      accountId: ACCOUNT,
      masterSeed: seed,
      phone: CONFIG.phone,
      username: "alice",
      provisioningCode: "pc_0123456789abcdef",
      primaryDeviceId: 3,
    });
    // A fresh ephemeral key each time: two approvals never repeat an envelope.
    await approveLink(api, store, CONFIG, uri);
    expect(seen[3]!.body.body).not.toBe(seen[1]!.body.body);
    const stranger = await ProvisioningKeyPair.generate();
    await expect(stranger.decrypt(b64decode(seen[1]!.body.body))).rejects.toThrow();
    expect(b64urlencode(newDevice.publicBytes)).not.toBe(b64urlencode(stranger.publicBytes));
  });

  it("sends nothing without a master key, and passes the server's refusal on", async () => {
    const store = await IdbStore.open(`approve-${n++}`);
    const seen: Array<{ method: string; url: string; body: any }> = [];
    const api = new HttpApi(CONFIG.server, null, fakeServer(seen, 404));
    const pair = await ProvisioningKeyPair.generate();
    const uri = parseLinkUri(buildProvisioningUri(CHANNEL, pair.publicBytes));
    await expect(approveLink(api, store, CONFIG, uri)).rejects.toThrow(/no master key/);
    expect(seen).toEqual([]);
    await store.putSecret("master_key", new Uint8Array(32).fill(1));
    await expect(approveLink(api, store, CONFIG, uri)).rejects.toBeInstanceOf(ServerError);
  });
});
