import { readdirSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { defineConfig, type ViteUserConfig as UserConfig } from "vitest/config";

// The app is static files that `porch serve` serves (issue 9; src/porch/server/web.py): hashed
// asset names under assets/ so the server can cache them for a year, no inline scripts or
// styles (a strict CSP), libolm's wasm as a file; public/ (manifest, icons) is copied as is.
const app: UserConfig = {
  build: {
    target: "es2022",
    outDir: "dist",
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  define: { __PORCH_ASSETS__: "[]" },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    // Safety numbers run 2 x 5200 SHA-512 rounds through WebCrypto; keep some headroom.
    testTimeout: 30_000,
  },
};

/** Every file the app build wrote, as the absolute paths the server serves them at. */
function builtFiles(dir: string): string[] {
  const walk = (at: string): string[] =>
    readdirSync(at).flatMap((name) => {
      const path = join(at, name);
      return statSync(path).isDirectory() ? walk(path) : [path];
    });
  return walk(dir)
    .map((path) => "/" + relative(dir, path).split(sep).join("/"))
    .filter((path) => path !== "/sw.js")
    .sort();
}

// `vite build --mode sw`, run after the app build (package.json "build"): the service worker
// as one classic script at dist/sw.js. Its name never changes (a browser checks the same URL
// for updates, and the server sends it with no-cache), and it must be one file: a service
// worker importing the app's hashed chunks would break on the next build. It gets the list of
// the app's files for its offline shell.
function serviceWorker(): UserConfig {
  return {
    build: {
      target: "es2022",
      outDir: "dist",
      emptyOutDir: false,
      copyPublicDir: false,
      sourcemap: false,
      lib: {
        entry: "src/sw/sw.ts",
        formats: ["iife"],
        name: "porchServiceWorker",
        fileName: () => "sw.js",
      },
    },
    define: {
      __PORCH_ASSETS__: JSON.stringify(builtFiles("dist")),
      "process.env.NODE_ENV": JSON.stringify("production"),
    },
  };
}

export default defineConfig(({ mode }) => (mode === "sw" ? serviceWorker() : app));
