// The page's side of Web Push (docs/protocol.md, "Push"): subscribe this browser with the
// server's VAPID key and store the subscription for this device; or undo both. The UI asks
// for notification permission first (it needs a user gesture); this module never does.

/** The part of the app's HTTP API used here (net/http.ts HttpApi.call, with credentials). */
export interface PushApi {
  call(method: string, path: string, json?: unknown): Promise<unknown>;
}

export interface PushSubscriptionLike {
  readonly options: { readonly applicationServerKey: ArrayBuffer | null };
  toJSON(): unknown;
  unsubscribe(): Promise<boolean>;
}

export interface PushManagerLike {
  getSubscription(): Promise<PushSubscriptionLike | null>;
  subscribe(options: {
    userVisibleOnly: boolean;
    applicationServerKey: Uint8Array;
  }): Promise<PushSubscriptionLike>;
}

function fromBase64url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function sameBytes(a: ArrayBuffer | null, b: Uint8Array): boolean {
  if (a === null || a.byteLength !== b.length) return false;
  const view = new Uint8Array(a);
  return view.every((x, i) => x === b[i]);
}

/** Subscribe (or keep the subscription made with the same key) and store it on the server. */
export async function enablePush(api: PushApi, manager: PushManagerLike): Promise<void> {
  const answer = (await api.call("GET", "/v1/push/vapid")) as { public_key?: unknown };
  if (typeof answer?.public_key !== "string") throw new Error("the server sent no VAPID key");
  const key = fromBase64url(answer.public_key);
  if (key.length !== 65) throw new Error("the server's VAPID key is not a P-256 public key");
  let subscription = await manager.getSubscription();
  if (subscription && !sameBytes(subscription.options.applicationServerKey, key)) {
    // Made for another key (the server's was replaced): the push service would refuse it.
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await manager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  await api.call("PUT", "/v1/push/subscription", subscription.toJSON());
}

/** Forget the subscription on the server, then in the browser. */
export async function disablePush(api: PushApi, manager: PushManagerLike): Promise<void> {
  await api.call("DELETE", "/v1/push/subscription");
  await (await manager.getSubscription())?.unsubscribe();
}
