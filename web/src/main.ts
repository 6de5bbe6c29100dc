/**
 * The browser client's entry point: open the profile's store; register when there is no
 * profile, else open it (keys, sessions, history as they were) and connect.
 *
 * The server is this page's origin, unless `?server=` names another (for development).
 */

import { openProfile } from "./net/profile";
import { IdbStore } from "./store/idb";
import { App } from "./ui/app";
import { registerScreen } from "./ui/register";
import { installRetryNotice } from "./ui/retry_notice";
import "./ui/style.css";
import "./ui/group_admin.css";

declare global {
  interface Window {
    porch?: App; // for the browser tests and the console: the running app
  }
}

async function start(root: HTMLElement): Promise<void> {
  if (!globalThis.crypto?.subtle || !globalThis.indexedDB) {
    root.textContent =
      "Porch needs a browser with WebCrypto and IndexedDB, served over HTTPS or from localhost.";
    return;
  }
  const server = new URLSearchParams(location.search).get("server") ?? location.origin;
  const store = await IdbStore.open();
  const run = (profile: Awaited<ReturnType<typeof openProfile>> & object) => {
    const app = new App(root, store, profile);
    window.porch = app;
    app.start();
  };
  const profile = await openProfile(store);
  if (profile) run(profile);
  else registerScreen(root, store, server, run);
}

/** The offline shell and push (src/sw/sw.ts, built to /sw.js): the app works without it. */
function registerServiceWorker(): void {
  if (!("serviceWorker" in navigator) || new URLSearchParams(location.search).has("server")) return;
  navigator.serviceWorker.register("/sw.js").catch(() => undefined);
}

const root = document.getElementById("app");
if (root) {
  registerServiceWorker();
  installRetryNotice();
  start(root).catch(() => {
    root.textContent =
      "Porch could not open its storage or its encryption; reload the page to try again.";
  });
}
