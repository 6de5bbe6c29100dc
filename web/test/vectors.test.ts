// Which groups of tests/vectors/*.json the TypeScript core checks, and which not yet. A group
// added to crypto.json fails this test until it is listed here, so the browser client cannot
// silently fall behind the Python one (docs/protocol.md: the vectors are checked by both).
import { describe, expect, it } from "vitest";
import { ATTACHMENT, CRYPTO } from "./vectors";

/** Group -> the test file that checks every entry of it. */
export const COVERED: Record<string, string> = {
  device_binding: "test/crypto/signing.test.ts",
  one_time_key: "test/crypto/signing.test.ts",
  device_list: "test/crypto/signing.test.ts",
  group_key_signature: "test/crypto/signing.test.ts",
  padding: "test/crypto/content.test.ts",
  content: "test/crypto/content.test.ts",
  rich_content: "test/crypto/content.test.ts",
  safety_number: "test/crypto/safety.test.ts",
  safety_number_libsignal: "test/crypto/safety.test.ts",
  group_message: "test/crypto/group_message.test.ts",
  group_state: "test/crypto/group_state.test.ts",
  provisioning: "test/crypto/provisioning.test.ts",
  subkey: "test/crypto/hkdf.test.ts",
};

/** Group -> why the TypeScript core does not check it yet. */
export const NOT_YET: Record<string, string> = {};

describe("shared vector coverage", () => {
  it("classifies every group of crypto.json", () => {
    const groups = Object.keys(CRYPTO).filter((k) => k !== "description");
    expect([...Object.keys(COVERED), ...Object.keys(NOT_YET)].sort()).toEqual(groups.sort());
    for (const group of groups) expect(CRYPTO[group]!.length, group).toBeGreaterThan(0);
  });

  it("checks attachment.json whole (test/crypto/attachment.test.ts)", () => {
    expect(Object.keys(ATTACHMENT).sort()).toEqual(
      ["cases", "description", "iv_hex", "key_hex", "padded_size_edges"].sort(),
    );
  });
});
