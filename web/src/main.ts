/**
 * The browser client's entry point. The screens come in a later part of issue 9; for now the
 * page loads the crypto core (libolm's WebAssembly included, so the build proves it bundles)
 * and says whether this browser has what Porch needs.
 */

import { loadOlm } from "./crypto/olm_raw";

async function start(root: HTMLElement): Promise<void> {
  if (!globalThis.crypto?.subtle) {
    root.textContent = "Porch needs a browser with WebCrypto, served over HTTPS or from localhost.";
    return;
  }
  const { olm } = await loadOlm();
  const [major, minor, patch] = olm.get_library_version();
  root.textContent = `Porch is loading (libolm ${major}.${minor}.${patch}).`;
}

const root = document.getElementById("app");
if (root) {
  start(root).catch(() => {
    root.textContent = "Porch could not start its encryption; reload the page to try again.";
  });
}
