import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { CacheLike, FetchEventLike, WindowClientLike, WorkerScope } from "../../src/sw/sw";

// Imported only once the scope is in place (beforeAll): importing it earlier would run the
// module, and so its check for a worker scope, before there is one.
let sw: typeof import("../../src/sw/sw");

// A service worker's global scope, as much of it as sw.ts uses: installed on globalThis
// before sw.ts is imported, as `self` is in a real worker, so the module wires its own
// listeners the way it does in the browser.
type Listener = (event: unknown) => void;
const listeners = new Map<string, Listener>();
const shown: { title: string; options: NotificationOptions }[] = [];
let open: WindowClientLike[] = [];
const opened: string[] = [];

class MemoryCache implements CacheLike {
  readonly entries = new Map<string, Response>();
  private key(r: Request | string): string {
    return new URL(typeof r === "string" ? r : r.url, ORIGIN).href;
  }
  async match(r: Request | string): Promise<Response | undefined> {
    return this.entries.get(this.key(r))?.clone();
  }
  async put(r: Request | string, response: Response): Promise<void> {
    this.entries.delete(this.key(r));
    this.entries.set(this.key(r), response);
  }
  async addAll(urls: string[]): Promise<void> {
    for (const u of urls) await this.put(u, new Response(`cached ${u}`));
  }
  async keys(): Promise<readonly Request[]> {
    return [...this.entries.keys()].map((u) => new Request(u));
  }
  async delete(r: Request | string): Promise<boolean> {
    return this.entries.delete(this.key(r));
  }
}

const ORIGIN = "https://porch.example";
const caches = new Map<string, MemoryCache>();
let network: (request: Request) => Promise<Response> = async () => new Response("net");

const scope: WorkerScope = {
  location: { origin: ORIGIN },
  registration: {
    scope: `${ORIGIN}/`,
    async showNotification(title, options) {
      shown.push({ title, options });
    },
  },
  clients: {
    matchAll: async () => open,
    openWindow: async (url) => {
      opened.push(url);
    },
    claim: async () => undefined,
  },
  caches: {
    open: async (name) => {
      const cache = caches.get(name) ?? new MemoryCache();
      caches.set(name, cache);
      return cache;
    },
    keys: async () => [...caches.keys()],
    delete: async (name) => caches.delete(name),
  },
  skipWaiting: async () => undefined,
  fetch: (request) => network(request),
  addEventListener(type, listener) {
    listeners.set(type, listener as Listener);
  },
};

const saved = new Map<string, PropertyDescriptor | undefined>();
beforeAll(async () => {
  for (const [name, value] of Object.entries(scope)) {
    saved.set(name, Object.getOwnPropertyDescriptor(globalThis, name));
    Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  }
  sw = await import("../../src/sw/sw");
});
afterAll(() => {
  for (const [name, descriptor] of saved) {
    if (descriptor) Object.defineProperty(globalThis, name, descriptor);
    else Reflect.deleteProperty(globalThis, name);
  }
});

async function dispatch(type: string, event: object): Promise<void> {
  const waits: Promise<unknown>[] = [];
  const listener = listeners.get(type);
  expect(listener, `a ${type} listener`).toBeDefined();
  listener!({ ...event, waitUntil: (p: Promise<unknown>) => waits.push(p) });
  expect(waits).toHaveLength(1);
  await Promise.all(waits);
}

function pushEvent(payload: string | null): object {
  return { data: payload === null ? null : { text: () => payload } };
}

function client(url: string, focused: boolean): WindowClientLike & { messages: unknown[] } {
  const messages: unknown[] = [];
  return {
    url,
    focused,
    visibilityState: focused ? "visible" : "hidden",
    focus: vi.fn(async () => undefined),
    postMessage: (m: unknown) => messages.push(m),
    messages,
  };
}

describe("push", () => {
  it("shows a notification for a synthetic push event, without reading it", async () => {
    shown.length = 0;
    open = [];
    await dispatch("push", pushEvent('{"t":"wake"}'));
    expect(shown).toEqual([
      {
        title: "New message",
        options: expect.objectContaining({ tag: "porch-wake", body: "Open Porch to read it." }),
      },
    ]);
    // An empty push (no payload) is the same wake-up.
    await dispatch("push", pushEvent(null));
    expect(shown).toHaveLength(2);
  });

  it("tells open tabs to reconnect, and leaves the notification to a tab in front", async () => {
    shown.length = 0;
    const background = client(`${ORIGIN}/`, false);
    open = [background];
    await dispatch("push", pushEvent('{"t":"wake"}'));
    expect(background.messages).toEqual([{ type: "porch:wake" }]);
    expect(shown).toHaveLength(1);

    const front = client(`${ORIGIN}/#chat`, true);
    open = [background, front];
    await dispatch("push", pushEvent('{"t":"wake"}'));
    expect(front.messages).toEqual([{ type: "porch:wake" }]);
    expect(shown).toHaveLength(1);
  });
});

describe("notificationclick", () => {
  it("focuses the app's tab, or opens one", async () => {
    const close = vi.fn();
    const other = client("https://elsewhere.example/", false);
    const tab = client(`${ORIGIN}/settings`, false);
    open = [other, tab];
    await dispatch("notificationclick", { notification: { close } });
    expect(close).toHaveBeenCalledOnce();
    expect(tab.focus).toHaveBeenCalledOnce();
    expect(other.focus).not.toHaveBeenCalled();
    expect(opened).toEqual([]);

    open = [other];
    await dispatch("notificationclick", { notification: { close } });
    expect(opened).toEqual([`${ORIGIN}/`]);
  });
});

describe("offline shell", () => {
  function fetchEvent(url: string, mode: RequestMode = "cors") {
    const request = new Request(url);
    Object.defineProperty(request, "mode", { value: mode });
    const responses: Promise<Response>[] = [];
    const event: FetchEventLike = {
      request,
      respondWith: (r) => responses.push(r),
      waitUntil: () => undefined,
    };
    listeners.get("fetch")!(event);
    return responses;
  }

  it("caches the shell on install and drops old caches on activate", async () => {
    caches.set("porch-shell-v0", new MemoryCache());
    await dispatch("install", {});
    expect([...(caches.get("porch-shell-v1")?.entries.keys() ?? [])]).toContain(`${ORIGIN}/`);
    await dispatch("activate", {});
    expect(caches.has("porch-shell-v0")).toBe(false);
  });

  it("serves hashed assets from the cache, the page from the network or else the cache", async () => {
    let calls = 0;
    network = async () => {
      calls += 1;
      return new Response("asset bytes");
    };
    for (let i = 0; i < 2; i++) {
      const [response] = fetchEvent(`${ORIGIN}/assets/index-abc123.js`);
      expect(await (await response!).text()).toBe("asset bytes");
    }
    expect(calls).toBe(1);

    network = async () => new Response("fresh page");
    const [page] = fetchEvent(`${ORIGIN}/`, "navigate");
    expect(await (await page!).text()).toBe("fresh page");
    network = async () => {
      throw new TypeError("offline");
    };
    const [offline] = fetchEvent(`${ORIGIN}/chat`, "navigate");
    expect(await (await offline!).text()).toBe("fresh page");
  });

  it("keeps the asset cache bounded and never touches the API", async () => {
    network = async (r) => new Response(r.url);
    caches.delete("porch-assets-v1");
    const n = sw.MAX_ASSETS + 6;
    for (let i = 0; i < n; i++) await fetchEvent(`${ORIGIN}/assets/chunk-${i}.js`)[0];
    const assets = caches.get("porch-assets-v1")!;
    expect(assets.entries.size).toBe(sw.MAX_ASSETS);
    expect(assets.entries.has(`${ORIGIN}/assets/chunk-${n - 1}.js`)).toBe(true);
    expect(assets.entries.has(`${ORIGIN}/assets/chunk-0.js`)).toBe(false);
    expect(fetchEvent(`${ORIGIN}/v1/push/vapid`)).toEqual([]);
    expect(fetchEvent("https://cdn.example/assets/x.js")).toEqual([]);
  });

  it("precaches the build's files, survives a missing one, and drops older builds' assets", async () => {
    caches.clear();
    const build = ["/index.html", "/assets/index-new.js", "/assets/olm-1.wasm", "/missing.png"];
    const shell = (await scope.caches.open("porch-shell-v1")) as MemoryCache;
    const real = shell.addAll.bind(shell);
    shell.addAll = async (urls) => {
      if (urls.includes("/missing.png")) throw new TypeError("404");
      return real(urls);
    };
    const assets = (await scope.caches.open("porch-assets-v1")) as MemoryCache;
    await assets.put(`${ORIGIN}/assets/index-old.js`, new Response("old"));
    await sw.onInstall(scope, build);
    expect([...shell.entries.keys()]).toEqual([`${ORIGIN}/`]);
    await sw.onActivate(scope, build);
    expect([...assets.entries.keys()].sort()).toEqual([
      `${ORIGIN}/assets/index-new.js`,
      `${ORIGIN}/assets/olm-1.wasm`,
    ]);
  });
});
