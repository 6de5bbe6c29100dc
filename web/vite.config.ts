import { defineConfig } from "vitest/config";

// The app is static files that `porch serve` will serve (issue 9): hashed asset names so the
// server can cache them for long, no inline scripts (a strict CSP), libolm's wasm as a file.
export default defineConfig({
  build: {
    target: "es2022",
    outDir: "dist",
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    // Safety numbers run 2 x 5200 SHA-512 rounds through WebCrypto; keep some headroom.
    testTimeout: 30_000,
  },
});
