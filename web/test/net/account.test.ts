import { describe, expect, it } from "vitest";
import { ClientError } from "../../src/core/errors";
import {
  type AccountApi,
  MAX_BLOCKED,
  accountInfo,
  blockedAccounts,
  normalizeUsername,
  parseAccount,
  setBlocked,
  setDiscoverable,
  setUsername,
} from "../../src/net/account";

const ME = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";
const ACCOUNT = {
  account_id: ME,
  device_id: 1,
  phone: "+14155550100",
  username: null,
  discoverable: true,
  devices: [],
};

/** The server's side of the calls: what each path answers, and what was asked. */
class Api implements AccountApi {
  calls: [string, string, unknown][] = [];
  constructor(private readonly answers: Record<string, unknown>) {}
  async call(method: string, path: string, json?: unknown): Promise<any> {
    this.calls.push([method, path, json]);
    return this.answers[`${method} ${path}`] ?? null;
  }
}

describe("the account from GET /v1/accounts/me", () => {
  it("reads the fields the settings show", async () => {
    const api = new Api({ "GET /v1/accounts/me": { ...ACCOUNT, username: "erin" } });
    expect(await accountInfo(api)).toEqual({
      accountId: ME,
      deviceId: 1,
      phone: "+14155550100",
      username: "erin",
      discoverable: true,
    });
  });

  it.each([
    ["account id", { account_id: "ME" }],
    ["device id", { device_id: 0 }],
    ["device id", { device_id: 2 ** 31 }],
    ["phone number", { phone: "+1".padEnd(40, "5") }],
    ["username", { username: "Not Valid" }],
    ["discoverability", { discoverable: "yes" }],
  ])("refuses an answer without a valid %s", (what, change) => {
    expect(() => parseAccount({ ...ACCOUNT, ...change })).toThrow(`no valid ${what}`);
  });

  it("refuses what is not an object", () => {
    expect(() => parseAccount(null)).toThrow(ClientError);
    expect(() => parseAccount("me")).toThrow(ClientError);
  });
});

describe("usernames", () => {
  it("normalise as the server does: @ stripped, lower-cased; empty releases", () => {
    expect(normalizeUsername("  @Dora_B ")).toBe("dora_b");
    expect(normalizeUsername("")).toBeNull();
    expect(normalizeUsername("@")).toBeNull();
  });

  it.each(["ab", "1abc", "has space", "a".repeat(33), "émile"])("refuses %j", (name) => {
    expect(() => normalizeUsername(name)).toThrow(/3-32 characters/);
  });

  it("PUT the name (null to release) and keep what the server answers", async () => {
    const api = new Api({ "PUT /v1/accounts/me/username": { username: "dora_b" } });
    expect(await setUsername(api, "dora_b")).toBe("dora_b");
    const release = new Api({});
    expect(await setUsername(release, null)).toBeNull();
    expect(release.calls).toEqual([["PUT", "/v1/accounts/me/username", { username: null }]]);
    const bad = new Api({ "PUT /v1/accounts/me/username": { username: 7 } });
    await expect(setUsername(bad, "dora_b")).rejects.toThrow(/no valid username/);
  });
});

describe("discoverability and blocks", () => {
  it("PUT discoverable as a boolean", async () => {
    const api = new Api({});
    await setDiscoverable(api, false);
    expect(api.calls).toEqual([["PUT", "/v1/accounts/me/discoverable", { discoverable: false }]]);
  });

  it("block is PUT and unblock DELETE on the account's path; a bad id is not sent", async () => {
    const api = new Api({});
    await setBlocked(api, BOB, true);
    await setBlocked(api, BOB, false);
    expect(api.calls).toEqual([
      ["PUT", `/v1/blocks/${BOB}`, undefined],
      ["DELETE", `/v1/blocks/${BOB}`, undefined],
    ]);
    await expect(setBlocked(api, "../keys", true)).rejects.toThrow(/not an account id/);
    expect(api.calls).toHaveLength(2);
  });

  it("reads the blocked list, and refuses one too long or with a bad id", async () => {
    expect(await blockedAccounts(new Api({ "GET /v1/blocks": { blocked: [BOB] } }))).toEqual([BOB]);
    const long = { blocked: Array(MAX_BLOCKED + 1).fill(BOB) };
    await expect(blockedAccounts(new Api({ "GET /v1/blocks": long }))).rejects.toThrow(
      /list of blocked accounts/,
    );
    const odd = { blocked: [BOB, "Bob"] };
    await expect(blockedAccounts(new Api({ "GET /v1/blocks": odd }))).rejects.toThrow(
      /blocked account id/,
    );
    await expect(blockedAccounts(new Api({}))).rejects.toThrow(ClientError);
  });
});
