/**
 * PLACEHOLDER, written by the build (helper W3) only so that /sw.js exists: helper W2's service
 * worker (push notifications, the offline shell) replaces this file whole. vite.config.ts
 * builds it on its own, unhashed, to dist/sw.js as one classic script.
 */

// The files of the build, for the offline shell (defined by vite.config.ts; build-env.d.ts).
export const shellFiles: readonly string[] = __PORCH_ASSETS__;
