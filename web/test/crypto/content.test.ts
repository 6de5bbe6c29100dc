import { describe, expect, it } from "vitest";
import { b64decode, hexdecode, hexencode, utf8encode } from "../../src/protocol/codec";
import {
  type Encodable,
  contentToJson,
  decodeContent,
  encodeContent,
  pad,
  unpad,
} from "../../src/crypto/content";
import { ContentError } from "../../src/crypto/errors";
import type { Attachment } from "../../src/crypto/rich";
import { CRYPTO, type Vector } from "../vectors";

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";

function attachment(obj: Vector): Attachment {
  const att: Attachment = {
    id: obj.id,
    key: b64decode(obj.key),
    digest: b64decode(obj.digest),
    size: obj.size,
    contentType: obj.type,
  };
  if (obj.name !== undefined) att.name = obj.name;
  if (obj.w !== undefined) att.width = obj.w;
  if (obj.h !== undefined) att.height = obj.h;
  if (obj.duration !== undefined) att.durationMs = obj.duration;
  if (obj.thumb !== undefined) att.thumbnail = b64decode(obj.thumb);
  if (obj.blurhash !== undefined) att.blurhash = obj.blurhash;
  if (obj.voice !== undefined) att.voice = obj.voice;
  return att;
}

/** A vector's content built field by field (not by re-serialising its JSON). */
function build(obj: Vector): Encodable {
  const group = obj.group === undefined ? {} : { group: obj.group as string };
  switch (obj.t) {
    case "sent":
      return { t: "sent", to: obj.to, content: build(obj.c) as never };
    case "text": {
      const text: Encodable = { t: "text", id: obj.id, body: obj.body, ts: obj.ts, ...group };
      if (obj.att) text.attachments = (obj.att as Vector[]).map(attachment);
      if (obj.reply) text.reply = { ...obj.reply };
      if (obj.fwd !== undefined) text.forwarded = obj.fwd;
      if (obj.exp !== undefined) text.expires = obj.exp;
      return text;
    }
    case "receipt":
      return { t: "receipt", kind: obj.kind, ids: obj.ids };
    case "typing":
      return { t: "typing", state: obj.state };
    case "retry":
      return { t: "retry", ts: obj.ts, device: obj.device, ...(obj.id ? { id: obj.id } : {}) };
    case "group_key":
      return { t: "group_key", group: obj.group, session: obj.session, key: obj.key, sig: obj.sig };
    case "group_state_key":
      return { t: "group_state_key", group: obj.group, epoch: obj.epoch, key: obj.key };
    case "group_update":
      return {
        t: "group_update",
        group: obj.group,
        revision: obj.revision,
        action: obj.action,
        targets: obj.targets,
      };
    case "reaction":
      return {
        t: "reaction",
        id: obj.id,
        author: obj.author,
        emoji: obj.emoji,
        ts: obj.ts,
        ...group,
      };
    case "edit":
      return { t: "edit", id: obj.id, body: obj.body, ts: obj.ts, ...group };
    case "delete":
      return { t: "delete", id: obj.id, ts: obj.ts, ...group };
    case "timer":
      return { t: "timer", seconds: obj.seconds, ts: obj.ts };
    default:
      throw new Error(`no builder for ${obj.t}`);
  }
}

function checkVector(v: Vector): void {
  const content = build(v.content);
  const raw = contentToJson(content);
  expect(hexencode(raw)).toBe(hexencode(utf8encode(v.json)));
  expect(hexencode(raw)).toBe(v.json_hex);
  const encoded = encodeContent(content);
  expect(encoded.length).toBe(v.padded_length);
  expect(decodeContent(encoded)).toEqual(content);
}

describe("crypto.json vectors", () => {
  it.each(CRYPTO.padding!)("padding $input_hex", (v) => {
    expect(hexencode(pad(hexdecode(v.input_hex)))).toBe(v.padded_hex);
    expect(hexencode(unpad(hexdecode(v.padded_hex)))).toBe(v.input_hex);
  });

  it.each(CRYPTO.content!.map((v, i) => [i, v] as const))("content #%i", (_i, v) => checkVector(v));

  it.each(CRYPTO.rich_content!.map((v, i) => [i, v] as const))("rich_content #%i", (_i, v) =>
    checkVector(v),
  );
});

function padded(json: string): Uint8Array {
  return pad(utf8encode(json));
}

describe("decoding refuses what Python refuses", () => {
  const bad: Array<[string, string]> = [
    ["not json", "{"],
    ["an array", "[1]"],
    ["no version", '{"t":"typing","state":"started"}'],
    ["version true", '{"v":true,"t":"typing","state":"started"}'],
    ["a text without id", '{"v":1,"t":"text","body":"x","ts":1}'],
    ["a ts past 2**53-1", '{"v":1,"t":"text","id":"a","body":"x","ts":9007199254740992}'],
    ["a lone surrogate", '{"v":1,"t":"text","id":"a","body":"\\ud800","ts":1}'],
    [
      "a sent in a sent",
      `{"v":1,"t":"sent","to":"${ALICE}","c":{"v":1,"t":"sent","to":"${ALICE}","c":{}}}`,
    ],
    [
      "eleven attachments",
      `{"v":1,"t":"text","id":"a","body":"","ts":1,"att":[${Array(11).fill("{}").join(",")}]}`,
    ],
    [
      "a reply body of 201 characters",
      `{"v":1,"t":"text","id":"a","body":"","ts":1,"reply":{"id":"q","author":"${ALICE}","body":"${"é".repeat(201)}"}}`,
    ],
    ["a timer past a year", '{"v":1,"t":"timer","seconds":31536001,"ts":1}'],
    [
      "an emoji of 33 bytes",
      `{"v":1,"t":"reaction","id":"a","author":"${ALICE}","emoji":"${"x".repeat(33)}","ts":1}`,
    ],
    ["fwd null", '{"v":1,"t":"text","id":"a","body":"","ts":1,"fwd":null}'],
  ];
  it.each(bad)("%s", (_what, json) => {
    expect(() => decodeContent(padded(json))).toThrow(ContentError);
  });

  it("refuses a body over 64 KiB, counted in UTF-8 bytes", () => {
    const body = "é".repeat(32 * 1024 + 1);
    expect(() =>
      decodeContent(padded(`{"v":1,"t":"text","id":"a","body":"${body}","ts":1}`)),
    ).toThrow(/exceeds 65536 bytes/);
    expect(() => encodeContent({ t: "text", id: "a", body, ts: 1 })).toThrow(ContentError);
  });

  it("refuses a missing marker and invalid UTF-8", () => {
    expect(() => decodeContent(new Uint8Array(160))).toThrow(/missing padding marker/);
    expect(() => decodeContent(Uint8Array.of(0xff, 0x80))).toThrow(/not valid UTF-8/);
  });

  it("keeps unknown kinds and ignores unknown fields", () => {
    expect(decodeContent(padded('{"v":1,"t":"call","sdp":"x"}'))).toEqual({
      t: "unknown",
      kind: "call",
      raw: { v: 1, t: "call", sdp: "x" },
    });
    expect(decodeContent(padded('{"v":1,"t":"typing","state":"stopped","new":[1]}'))).toEqual({
      t: "typing",
      state: "stopped",
    });
  });

  it("refuses to encode an attachment named with a path", () => {
    const att: Attachment = {
      id: "AAECAwQFBgcICQoLDA0ODw",
      key: new Uint8Array(64),
      digest: new Uint8Array(32),
      size: 1,
      contentType: "text/plain",
      name: "../etc/passwd",
    };
    expect(() =>
      encodeContent({ t: "text", id: "a", body: "", ts: 1, attachments: [att] }),
    ).toThrow(/plain file name/);
  });
});
