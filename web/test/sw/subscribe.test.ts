import { webcrypto } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  disablePush,
  enablePush,
  type PushApi,
  type PushManagerLike,
  type PushSubscriptionLike,
} from "../../src/sw/subscribe";

async function vapidKey(): Promise<{ raw: Uint8Array; text: string }> {
  const pair = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
  ]);
  const raw = new Uint8Array(await webcrypto.subtle.exportKey("raw", pair.publicKey));
  return { raw, text: Buffer.from(raw).toString("base64url") };
}

class Api implements PushApi {
  calls: [string, string, unknown][] = [];
  constructor(private readonly key: string) {}
  async call(method: string, path: string, json?: unknown): Promise<unknown> {
    this.calls.push([method, path, json]);
    return path === "/v1/push/vapid" ? { public_key: this.key } : null;
  }
}

class Manager implements PushManagerLike {
  current: (PushSubscriptionLike & { endpoint: string; unsubscribed: boolean }) | null = null;
  made = 0;
  async getSubscription() {
    return this.current;
  }
  async subscribe(options: { userVisibleOnly: boolean; applicationServerKey: Uint8Array }) {
    expect(options.userVisibleOnly).toBe(true); // browsers refuse silent pushes
    this.made += 1;
    const endpoint = `https://push.example/sub/${this.made}`;
    const sub = {
      endpoint,
      unsubscribed: false,
      options: { applicationServerKey: options.applicationServerKey.slice().buffer },
      toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh: "p", auth: "a" } }),
      unsubscribe: async () => {
        sub.unsubscribed = true;
        manager.current = null;
        return true;
      },
    };
    const manager = this;
    this.current = sub;
    return sub;
  }
}

describe("enablePush", () => {
  it("subscribes with the server's key and stores the subscription", async () => {
    const { raw, text } = await vapidKey();
    const api = new Api(text);
    const manager = new Manager();
    await enablePush(api, manager);
    expect(new Uint8Array(manager.current!.options.applicationServerKey!)).toEqual(raw);
    expect(api.calls).toEqual([
      ["GET", "/v1/push/vapid", undefined],
      [
        "PUT",
        "/v1/push/subscription",
        {
          endpoint: "https://push.example/sub/1",
          expirationTime: null,
          keys: { p256dh: "p", auth: "a" },
        },
      ],
    ]);
    await enablePush(api, manager); // the same key: the subscription is kept
    expect(manager.made).toBe(1);
  });

  it("replaces a subscription made for another key", async () => {
    const manager = new Manager();
    await enablePush(new Api((await vapidKey()).text), manager);
    const old = manager.current!;
    await enablePush(new Api((await vapidKey()).text), manager);
    expect(old.unsubscribed).toBe(true);
    expect(manager.made).toBe(2);
  });

  it("refuses a key that is not a P-256 point", async () => {
    await expect(enablePush(new Api("AAAA"), new Manager())).rejects.toThrow("P-256");
  });
});

describe("disablePush", () => {
  it("deletes the server's copy, then the browser's", async () => {
    const { text } = await vapidKey();
    const api = new Api(text);
    const manager = new Manager();
    await enablePush(api, manager);
    const sub = manager.current!;
    await disablePush(api, manager);
    expect(api.calls.at(-1)).toEqual(["DELETE", "/v1/push/subscription", undefined]);
    expect(sub.unsubscribed).toBe(true);
  });
});
