// The shared vector files: the very files tests/unit/crypto/test_vectors.py and
// test_attachment.py read, so a change to them is checked by both implementations.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

function load(name: string): Record<string, unknown> {
  const path = fileURLToPath(new URL(`../../tests/vectors/${name}`, import.meta.url));
  // Integers past 2**53 (a u64 device-list version) would lose precision in JSON.parse: they
  // are read as strings for the test to turn into BigInt.
  const text = readFileSync(path, "utf8").replace(/(:\s*)(\d{16,})(?=\s*[,}\]])/g, '$1"$2"');
  return JSON.parse(text) as Record<string, unknown>;
}

// A vector entry is whatever its group holds; each test reads the fields it knows.
export type Vector = Record<string, any>;

export const CRYPTO = load("crypto.json") as Record<string, Vector[]> & { description: string };
export const ATTACHMENT = load("attachment.json") as Vector;
