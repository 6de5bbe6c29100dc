import { describe, expect, it } from "vitest";
import { formatGroupLink, parseGroupLink } from "../../src/core/group_links";

// The vectors of tests/unit/client/test_group_links.py: both clients read a link alike.
const TOKEN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234";
const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const LINK = `porch://group?token=${TOKEN}#key=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8&epoch=7`;

describe("group invite links", () => {
  it("formats and parses the protocol's vector", () => {
    expect(formatGroupLink({ token: TOKEN, stateKey: KEY, epoch: 7 })).toBe(LINK);
    expect(parseGroupLink(`  ${LINK}\n`)).toEqual({ token: TOKEN, stateKey: KEY, epoch: 7 });
    const other = {
      token: TOKEN,
      stateKey: crypto.getRandomValues(new Uint8Array(32)),
      epoch: 2 ** 32 - 1,
    };
    expect(parseGroupLink(formatGroupLink(other))).toEqual(other);
  });

  it.each([
    ["https://group?token=x", "must start with porch://group"],
    [`porch://link?token=${TOKEN}`, "must start with porch://group"],
    [`porch://group?token=${TOKEN}`, "after #"],
    [`porch://group?token=${TOKEN.slice(0, -1)}#key=AA&epoch=1`, "invite token"],
    [LINK.replace("token=", "tok="), "invite token"],
    [LINK + "&epoch=8", "appears twice"],
    [LINK.replace("&epoch=7", ""), "epoch"],
    [LINK.replace("epoch=7", "epoch=07"), "epoch"],
    [LINK.replace("epoch=7", "epoch=4294967296"), "epoch"],
    [LINK.replace("epoch=7", "epoch=-1"), "epoch"],
    [LINK.replace("key=AAEC", "key=AAE"), "group key"],
    [LINK.replace("Hh8", "Hh9"), "exactly 32 bytes"],
    [LINK.replace("key=AAEC", "key=+AEC"), "group key"],
    [LINK + "x".repeat(300), "longer than"],
    [LINK.replace("group", "gröup"), "ASCII"],
  ])("refuses %s in words (bad_link)", (text, words) => {
    expect(() => parseGroupLink(text)).toThrow(
      expect.objectContaining({ code: "bad_link", message: expect.stringContaining(words) }),
    );
  });

  it("checks the fields it formats", () => {
    expect(() => formatGroupLink({ token: "short", stateKey: KEY, epoch: 1 })).toThrow(/token/);
    expect(() => formatGroupLink({ token: TOKEN, stateKey: KEY.slice(1), epoch: 1 })).toThrow(
      /32 bytes/,
    );
    expect(() => formatGroupLink({ token: TOKEN, stateKey: KEY, epoch: -1 })).toThrow(/epoch/);
  });
});
