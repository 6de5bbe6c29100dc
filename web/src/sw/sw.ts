// The service worker (issue 9, "Web Push" and "offline shell"), served at /sw.js (web/
// vite.config.ts builds this file as its own entry, with a stable name).
//
// Push: the server sends a content-free push ({"t":"wake"}, docs/protocol.md "Push") when an
// envelope waits for this device and it is not connected. The worker cannot decrypt anything:
// the keys live in the app's IndexedDB wrapped with a non-extractable key, and messages come
// only over the app's own connection. So it fetches nothing, shows "New message" (one
// notification, replaced by the next: tag), and tells any open tab to reconnect now.
//
// Offline shell: on install the worker caches the build's files (`__PORCH_ASSETS__`, listed by
// vite.config.ts's second pass, so a new build is a new sw.js and a new install); navigations
// are network-first with the cached page as fallback; hashed assets (/assets/*, immutable by
// their name) are cache-first, and on activate those of older builds are dropped. The API
// (/v1/*) and media are never cached: they are per-account and, for media, encrypted blobs
// the app handles itself. A file that fails to cache never fails the install: push matters
// more than the shell.
//
// The types below are the few parts of ServiceWorkerGlobalScope used here, declared by hand:
// the WebWorker lib cannot be loaded next to DOM in the one tsconfig the app shares.

import { WAKE_MESSAGE } from "./wake";

export const SHELL_CACHE = "porch-shell-v1";
export const ASSET_CACHE = "porch-assets-v1";
export const MAX_ASSETS = 256; // hashed files kept at most; the oldest go first
export const NOTIFICATION_TITLE = "New message";
export const NOTIFICATION_TAG = "porch-wake";
/** The files of this build (`[]` outside the service worker's own build, as under Vitest). */
export const BUILD_FILES: readonly string[] = __PORCH_ASSETS__;
const ICON = "/icon-192.png"; // web/public (manifest.webmanifest lists it)

export interface ExtendableEventLike {
  waitUntil(promise: Promise<unknown>): void;
}
export interface PushEventLike extends ExtendableEventLike {
  readonly data: { text(): string } | null;
}
export interface NotificationLike {
  close(): void;
}
export interface NotificationEventLike extends ExtendableEventLike {
  readonly notification: NotificationLike;
}
export interface FetchEventLike extends ExtendableEventLike {
  readonly request: Request;
  respondWith(response: Promise<Response>): void;
}
export interface WindowClientLike {
  readonly url: string;
  readonly focused: boolean;
  readonly visibilityState: string;
  focus(): Promise<unknown>;
  postMessage(message: unknown): void;
}
export interface CacheLike {
  match(request: Request | string): Promise<Response | undefined>;
  put(request: Request | string, response: Response): Promise<void>;
  addAll(requests: string[]): Promise<void>;
  keys(): Promise<readonly Request[]>;
  delete(request: Request | string): Promise<boolean>;
}
export interface WorkerScope {
  readonly location: { readonly origin: string };
  readonly registration: {
    readonly scope: string;
    showNotification(title: string, options: NotificationOptions): Promise<void>;
  };
  readonly clients: {
    matchAll(options: {
      type: "window";
      includeUncontrolled: boolean;
    }): Promise<readonly WindowClientLike[]>;
    openWindow(url: string): Promise<unknown>;
    claim(): Promise<void>;
  };
  readonly caches: {
    open(name: string): Promise<CacheLike>;
    keys(): Promise<string[]>;
    delete(name: string): Promise<boolean>;
  };
  skipWaiting(): Promise<void>;
  fetch(request: Request): Promise<Response>;
  addEventListener(type: string, listener: (event: never) => void): void;
}

async function windows(scope: WorkerScope): Promise<readonly WindowClientLike[]> {
  return scope.clients.matchAll({ type: "window", includeUncontrolled: true });
}

export async function onPush(scope: WorkerScope, _event: PushEventLike): Promise<void> {
  // The payload is ignored on purpose: it says nothing, and nothing it could say is trusted.
  const open = await windows(scope);
  for (const client of open) client.postMessage(WAKE_MESSAGE);
  // A tab in front of the person shows the message itself.
  if (open.some((c) => c.focused && c.visibilityState === "visible")) return;
  await scope.registration.showNotification(NOTIFICATION_TITLE, {
    body: "Open Porch to read it.",
    tag: NOTIFICATION_TAG,
    icon: ICON,
    badge: ICON,
  });
}

export async function onNotificationClick(
  scope: WorkerScope,
  event: NotificationEventLike,
): Promise<void> {
  event.notification.close();
  const app = new URL(scope.registration.scope);
  for (const client of await windows(scope)) {
    if (new URL(client.url).origin === app.origin) {
      await client.focus();
      return;
    }
  }
  await scope.clients.openWindow(app.href);
}

function isAsset(url: URL, scope: WorkerScope): boolean {
  return url.origin === scope.location.origin && isAssetPath(url.pathname);
}

async function assetFirst(scope: WorkerScope, request: Request): Promise<Response> {
  const cache = await scope.caches.open(ASSET_CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await scope.fetch(request);
  if (response.ok) {
    await cache.put(request, response.clone());
    const keys = await cache.keys();
    // Keys come oldest first: a deploy's new names push the old ones out.
    for (const old of keys.slice(0, Math.max(0, keys.length - MAX_ASSETS))) await cache.delete(old);
  }
  return response;
}

async function pageNetworkFirst(scope: WorkerScope, request: Request): Promise<Response> {
  const cache = await scope.caches.open(SHELL_CACHE);
  try {
    const response = await scope.fetch(request);
    if (response.ok) await cache.put("/", response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match("/");
    if (cached) return cached;
    throw error;
  }
}

export function onFetch(scope: WorkerScope, event: FetchEventLike): void {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (request.mode === "navigate" && url.origin === scope.location.origin) {
    event.respondWith(pageNetworkFirst(scope, request));
  } else if (isAsset(url, scope)) {
    event.respondWith(assetFirst(scope, request));
  }
  // Everything else (the API, media, other origins) goes to the network untouched.
}

function isAssetPath(path: string): boolean {
  return path.startsWith("/assets/");
}

export async function onInstall(
  scope: WorkerScope,
  files: readonly string[] = BUILD_FILES,
): Promise<void> {
  const shell = await scope.caches.open(SHELL_CACHE);
  const assets = await scope.caches.open(ASSET_CACHE);
  const pages = ["/", ...files.filter((f) => !isAssetPath(f) && f !== "/index.html")];
  // One by one, so that one missing file costs only itself.
  await Promise.allSettled([
    ...pages.map((f) => shell.addAll([f])),
    ...files.filter(isAssetPath).map((f) => assets.addAll([f])),
  ]);
  await scope.skipWaiting();
}

export async function onActivate(
  scope: WorkerScope,
  files: readonly string[] = BUILD_FILES,
): Promise<void> {
  const keep = new Set([SHELL_CACHE, ASSET_CACHE]);
  for (const name of await scope.caches.keys()) {
    if (name.startsWith("porch-") && !keep.has(name)) await scope.caches.delete(name);
  }
  if (files.length > 0) {
    // Hashed files of older builds: nothing of this build asks for them any more.
    const current = new Set(files.filter(isAssetPath));
    const assets = await scope.caches.open(ASSET_CACHE);
    for (const request of await assets.keys()) {
      if (!current.has(new URL(request.url).pathname)) await assets.delete(request);
    }
  }
  await scope.clients.claim();
}

export function install(scope: WorkerScope): void {
  scope.addEventListener("install", (e: ExtendableEventLike) => e.waitUntil(onInstall(scope)));
  scope.addEventListener("activate", (e: ExtendableEventLike) => e.waitUntil(onActivate(scope)));
  scope.addEventListener("push", (e: PushEventLike) => e.waitUntil(onPush(scope, e)));
  scope.addEventListener("notificationclick", (e: NotificationEventLike) =>
    e.waitUntil(onNotificationClick(scope, e)),
  );
  scope.addEventListener("fetch", (e: FetchEventLike) => onFetch(scope, e));
}

// In a service worker, `self` is the scope; anywhere else (a test importing the handlers)
// nothing is installed unless the test provides one.
const here = globalThis as unknown as Partial<WorkerScope>;
if (typeof here.registration === "object" && typeof here.skipWaiting === "function") {
  install(here as WorkerScope);
}
