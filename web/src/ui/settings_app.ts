/**
 * What the contact info and settings screens need from the running app, built from its parts
 * (the profile's HTTP API, the store, the runner that serialises core calls): the contact's
 * identity, blocks, Web Push in this browser, and signing this browser out.
 */

import { deleteDB } from "idb";
import type { Action } from "../core/actions";
import { ClientError, IdentityError, ServerError, ServerUnreachable } from "../core/errors";
import { type ContactIdentity, contactIdentity } from "../core/identity";
import { MasterKey } from "../crypto/signing";
import { blockedAccounts, setBlocked } from "../net/account";
import { leaveAccount } from "../net/link";
import type { OpenProfile } from "../net/profile";
import type { Runner } from "../net/runner";
import { utf8encode } from "../protocol/codec";
import { type PushManagerLike, disablePush, enablePush } from "../sw/subscribe";
import type { IdbStore } from "../store/idb";
import type { ContactHandlers } from "./contact";
import type { PushControl, PushState } from "./settings";

export const DB_NAME = "porch"; // IdbStore.open's default
const SIGN_OUT_WAIT_MS = 5_000;
const PUSH_SUBSCRIBE_WAIT_MS = 10_000;

export interface AppParts {
  profile: OpenProfile;
  store: IdbStore;
  runner(): Runner; // the current one: a tab that becomes leader makes a new runner
  perform(actions: Action[]): void;
}

async function ownMasterKey(store: IdbStore): Promise<string> {
  const seed = await store.getSecret("master_key");
  if (!seed) throw new IdentityError("this profile holds no master key; register again");
  return (await MasterKey.fromPrivateBytes(seed)).publicB64;
}

/**
 * The contact's master key from the directory, checked and pinned as every bundle is (a
 * change is noted in the conversation), else the pin when the server cannot be reached.
 */
export async function currentIdentity(parts: AppParts, peer: string): Promise<ContactIdentity> {
  try {
    const bundle = await parts.profile.api.getKeys(peer);
    if (bundle.accountId !== peer)
      throw new IdentityError(
        `the key directory answered for another account than ${peer.slice(0, 8)}`,
      );
    const runner = parts.runner();
    parts.perform(await runner.serial(() => runner.core.checkBundle(bundle)));
  } catch (exc) {
    if (!(exc instanceof ServerUnreachable)) throw exc;
  }
  return contactIdentity(
    parts.profile.config.accountId,
    await ownMasterKey(parts.store),
    await parts.store.contact(peer),
  );
}

export function contactHandlers(parts: AppParts, peer: string, back: () => void): ContactHandlers {
  const api = parts.profile.api;
  const serial = <T>(fn: (runner: Runner) => Promise<T>): Promise<T> => {
    const runner = parts.runner();
    return runner.serial(() => fn(runner));
  };
  return {
    back,
    identity: () => currentIdentity(parts, peer),
    // Either one queues the contact's paused messages again: the leader's outbox sends them.
    markVerified: async (key) => parts.perform(await serial((r) => r.core.markVerified(peer, key))),
    acceptIdentity: async () => parts.perform(await serial((r) => r.core.acceptIdentity(peer))),
    isBlocked: async () => (await blockedAccounts(api)).includes(peer),
    setBlocked: (blocked) => setBlocked(api, peer, blocked),
  };
}

/** The username kept in the profile (as profile.json's), after the server changed it. */
export async function saveUsername(parts: AppParts, username: string | null): Promise<void> {
  parts.profile.config.username = username;
  await parts.store.putSecret("profile", utf8encode(JSON.stringify(parts.profile.config)));
}

async function registration(): Promise<ServiceWorkerRegistration | null> {
  if (
    !("serviceWorker" in navigator) ||
    typeof PushManager === "undefined" ||
    typeof Notification === "undefined"
  )
    return null;
  return (await navigator.serviceWorker.getRegistration()) ?? null;
}

/** The browser's PushManager as ../sw/subscribe takes it (its key copied into an ArrayBuffer). */
function manager(reg: ServiceWorkerRegistration): PushManagerLike {
  return {
    getSubscription: () => reg.pushManager.getSubscription(),
    subscribe: (o) =>
      reg.pushManager.subscribe({
        userVisibleOnly: o.userVisibleOnly,
        applicationServerKey: new Uint8Array(o.applicationServerKey),
      }),
  };
}

/** Web Push for this browser: state from the browser, changes through ../sw/subscribe. */
export function pushControl(parts: AppParts): PushControl {
  const api = parts.profile.api;
  return {
    async state(): Promise<PushState> {
      const reg = await registration();
      if (!reg) return "unsupported";
      if (Notification.permission === "denied") return "denied";
      return (await reg.pushManager.getSubscription()) ? "on" : "off";
    },
    async enable(): Promise<void> {
      const reg = await registration();
      if (!reg) throw new ClientError("this browser cannot show Porch notifications here", "push");
      if ((await Notification.requestPermission()) !== "granted")
        throw new ClientError("notifications were not allowed in this browser", "push_denied");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no answer from it")), PUSH_SUBSCRIBE_WAIT_MS);
      });
      try {
        // A browser whose push service is out of reach may never answer: say so instead.
        await Promise.race([enablePush(api, manager(reg)), late]);
      } catch (exc) {
        if (exc instanceof ClientError) throw exc;
        // The browser's push service refused or could not be reached (a DOMException).
        throw new ClientError(
          `this browser's push service did not subscribe Porch (${exc instanceof Error ? exc.message : "no reason given"}); try again later`,
          "push",
        );
      } finally {
        clearTimeout(timer);
      }
    },
    async disable(): Promise<void> {
      const reg = await registration();
      if (reg) await disablePush(api, manager(reg));
    },
  };
}

/** Signing out could not remove this device at the server: it is still on the account. The
 * settings screen offers to sign out here only. */
export class StillOnAccount extends ClientError {
  constructor(cause: string) {
    super(
      `${cause}, so this browser is still on your account. Try again, or sign out here only ` +
        "and remove it later from another device (its Devices list).",
      "sign_out_server",
    );
  }
}

/** Remove this device from the account at the server (net/link.ts `leaveAccount`). A device
 * the server no longer knows (removed from another device) is gone already. */
async function leaveServer(parts: AppParts): Promise<boolean> {
  const { api, config } = parts.profile;
  try {
    return (await leaveAccount(api, parts.store, config)) === "left";
  } catch (exc) {
    if (exc instanceof ServerError && ["auth_failed", "revoked"].includes(exc.code)) return true;
    if (exc instanceof ServerUnreachable)
      throw new StillOnAccount("The server could not be reached");
    if (exc instanceof ClientError)
      throw new StillOnAccount(`The server did not remove this device (${exc.message})`);
    throw exc;
  }
}

/**
 * Sign this browser out: remove it from the account at the server (unless `localOnly`: the
 * user chose so after that failed), stop the connection, forget its push subscription (best effort:
 * the server drops a dead one anyway), then delete the whole database, keys and history with
 * it. Other tabs close theirs when told (`signedout`); one that does not holds the deletion
 * up, which is said rather than waited for without end.
 */
export async function signOutBrowser(
  parts: AppParts,
  tellTabs: () => void,
  localOnly = false,
): Promise<void> {
  const gone = !localOnly && (await leaveServer(parts));
  parts.runner().stop();
  try {
    const reg = await registration();
    // A removed device's subscription went with it at the server (and its credential no
    // longer works there): only the browser's own subscription is left to end.
    if (reg && gone) await (await reg.pushManager.getSubscription())?.unsubscribe();
    else if (reg) await disablePush(parts.profile.api, manager(reg));
  } catch {
    /* the subscription dies with the keys: the server removes it at its first failed push */
  }
  tellTabs();
  parts.store.close();
  let blocked = false;
  const deleted = deleteDB(DB_NAME, { blocked: () => (blocked = true) });
  const waited = await Promise.race([
    deleted.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), SIGN_OUT_WAIT_MS)),
  ]);
  if (!waited && blocked) {
    void deleted.then(() => location.reload());
    throw new ClientError(
      "another Porch tab still has this profile open; close it to finish signing out",
      "sign_out_blocked",
    );
  }
  await deleted;
}
