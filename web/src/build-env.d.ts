/** Constants vite.config.ts defines at build time. */

/** Every file of the built app (`/index.html`, `/assets/…`, the manifest and icons) as
 * absolute paths, for the service worker's offline shell; `[]` outside the service worker's
 * build (in the app and under Vitest). */
declare const __PORCH_ASSETS__: readonly string[];
