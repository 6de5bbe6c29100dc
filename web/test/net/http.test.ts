import { describe, expect, it } from "vitest";
import { ServerError, ServerUnreachable } from "../../src/core/errors";
import { HttpApi, parseBundle } from "../../src/net/http";

const ACCOUNT = "b7f3c2a0-0000-4000-8000-00000000beef";

function answering(
  status: number,
  body: unknown,
  seen: Array<[string, RequestInit | undefined]> = [],
) {
  return async (url: string, init?: RequestInit) => {
    seen.push([url, init]);
    return new Response(body === null ? null : JSON.stringify(body), { status });
  };
}

describe("HttpApi", () => {
  it("sends device credentials as HTTP Basic account.device:password", async () => {
    const seen: Array<[string, RequestInit | undefined]> = [];
    const api = new HttpApi(
      "http://porch.test",
      { accountId: ACCOUNT, deviceId: 1, password: "pw" },
      answering(200, { one_time_keys: 7 }, seen),
    );
    expect(await api.keyCount()).toBe(7);
    const [url, init] = seen[0]!;
    expect(url).toBe("http://porch.test/v1/keys/count");
    expect((init!.headers as Record<string, string>).Authorization).toBe(
      `Basic ${btoa(`${ACCOUNT}.1:pw`)}`,
    );
  });

  it("turns the server's error shape into a ServerError with its code and details", async () => {
    const api = new HttpApi(
      "http://porch.test",
      null,
      answering(403, {
        error: { code: "code_invalid", message: "wrong code; 4 attempts left", attempts_left: 4 },
      }),
    );
    const error = await api.verify("s", "123456", "").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({
      code: "code_invalid",
      status: 403,
      details: { attempts_left: 4 },
    });
  });

  it("says the server is unreachable when fetch itself fails", async () => {
    const api = new HttpApi("http://porch.test", null, async () => {
      throw new TypeError("Failed to fetch");
    });
    await expect(api.requestCode("+14155550100")).rejects.toBeInstanceOf(ServerUnreachable);
  });

  it("refuses a bundle with fields of the wrong type or too many devices", () => {
    const device = {
      device_id: 1,
      registration_id: 2,
      curve25519: "c",
      ed25519: "e",
      signature: "s",
      one_time_key: null,
    };
    const ok = parseBundle({
      account_id: ACCOUNT,
      master_key: "m",
      devices: [device],
      device_list: null,
    });
    expect(ok.devices[0]).toMatchObject({ deviceId: 1, registrationId: 2, oneTimeKey: null });
    expect(() =>
      parseBundle({
        account_id: ACCOUNT,
        master_key: "m",
        devices: [{ ...device, device_id: "1" }],
      }),
    ).toThrow(/device id/);
    expect(() =>
      parseBundle({ account_id: ACCOUNT, master_key: "m", devices: Array(65).fill(device) }),
    ).toThrow(/not a key bundle/);
  });
});
