import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  AttachmentDecryptor,
  AttachmentEncryptor,
  AttachmentVerifier,
  blobSize,
  decryptAttachment,
  encryptAttachment,
  newKey,
  paddedSize,
} from "../../src/crypto/attachment";
import { AttachmentTampered, CryptoError } from "../../src/crypto/errors";
import { concatBytes, hexdecode, hexencode } from "../../src/protocol/codec";
import { ATTACHMENT, type Vector } from "../vectors";

const KEY = hexdecode(ATTACHMENT.key_hex);
const IV = hexdecode(ATTACHMENT.iv_hex);

function pattern(size: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 7 + 3) % 256);
}

function sha256hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

interface Stream {
  update(chunk: Uint8Array): Promise<Uint8Array>;
  finish(): Promise<Uint8Array>;
}

/** Feed `data` through `stream` in pieces of the given sizes (cycled); the whole output. */
async function feed(stream: Stream, data: Uint8Array, sizes: number[]): Promise<Uint8Array> {
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(await stream.update(data.subarray(at, at + n)));
    at += n;
  }
  out.push(await stream.finish());
  return concatBytes(...out);
}

describe("attachment.json vectors", () => {
  it.each(ATTACHMENT.padded_size_edges as Array<[number, number]>)(
    "padded_size(%i) = %i",
    (n, padded) => {
      expect(paddedSize(n)).toBe(padded);
    },
  );

  it.each((ATTACHMENT.cases as Vector[]).map((c) => [c.size as number, c] as const))(
    "case of %i bytes",
    async (_n, c) => {
      const data = c.plaintext_hex === undefined ? pattern(c.size) : hexdecode(c.plaintext_hex);
      expect(paddedSize(c.size)).toBe(c.padded_size);
      expect(blobSize(c.size)).toBe(c.blob_size);
      const [blob, key, digest] = await encryptAttachment(data, KEY, IV);
      expect(key).toBe(KEY);
      expect(blob.length).toBe(c.blob_size);
      if (c.blob_hex !== undefined) expect(hexencode(blob)).toBe(c.blob_hex);
      if (c.blob_sha256 !== undefined) expect(sha256hex(blob)).toBe(c.blob_sha256);
      expect(hexencode(digest)).toBe(c.digest_hex);
      expect(hexencode(await decryptAttachment(blob, KEY, digest, c.size))).toBe(hexencode(data));
    },
  );
});

describe("streaming in chunks (WebCrypto's one-shot CBC, chained)", () => {
  const size = 100_000;
  const data = pattern(size);
  const expected = ATTACHMENT.cases.find((c: { size: number }) => c.size === size);

  it.each([[[997]], [[15, 16, 17]], [[4096]], [[65536, 3]], [[size]]])(
    "encrypts in pieces %j to the vector's blob",
    async (sizes) => {
      const enc = new AttachmentEncryptor(KEY, size, IV);
      const blob = await feed(enc, data, sizes);
      const digest = enc.digest;
      expect(sha256hex(blob)).toBe(expected.blob_sha256);
      expect(hexencode(digest)).toBe(expected.digest_hex);
    },
  );

  it.each([[[1, 31, 32, 33]], [[16]], [[4099]], [[100_208]]])(
    "decrypts in pieces %j",
    async (sizes) => {
      const [blob] = await encryptAttachment(data, KEY, IV);
      const verifier = new AttachmentVerifier(KEY, hexdecode(expected.digest_hex), size);
      for (let at = 0; at < blob.length; at += 777) verifier.update(blob.subarray(at, at + 777));
      verifier.finish();
      expect(sha256hex(await feed(new AttachmentDecryptor(KEY, size), blob, sizes))).toBe(
        sha256hex(data),
      );
    },
  );

  it("hands out the padding tail in pieces", async () => {
    const enc = new AttachmentEncryptor(KEY, size, IV);
    const parts = [await enc.update(data)];
    for await (const part of enc.finishChunks(16)) parts.push(part);
    expect(parts.length).toBeGreaterThan(2);
    expect(sha256hex(concatBytes(...parts))).toBe(expected.blob_sha256);
    await expect(enc.finish()).rejects.toThrow(/already encrypted/);
  });

  it("never releases more than `size` bytes from a chunk", async () => {
    const [blob] = await encryptAttachment(pattern(20), KEY, IV);
    const dec = new AttachmentDecryptor(KEY, 20);
    const first = await dec.update(blob.subarray(0, blob.length - 40));
    expect(first.length).toBeLessThanOrEqual(20);
  });
});

describe("verify-then-decrypt refuses a tampered blob", () => {
  const data = pattern(1000);

  async function tamper(change: (blob: Uint8Array) => Uint8Array): Promise<unknown> {
    const [blob, , digest] = await encryptAttachment(data, KEY, IV);
    try {
      await decryptAttachment(change(blob.slice()), KEY, digest, data.length);
    } catch (exc) {
      return exc;
    }
    return null;
  }

  it.each([
    ["a flipped ciphertext bit", (b: Uint8Array) => ((b[100]! ^= 1), b), /MAC/],
    ["a flipped MAC bit", (b: Uint8Array) => ((b[b.length - 1]! ^= 1), b), /MAC/],
    ["a truncated blob", (b: Uint8Array) => b.subarray(0, b.length - 16), /shorter/],
    ["an extended blob", (b: Uint8Array) => concatBytes(b, new Uint8Array(16)), /longer/],
  ] as const)("%s", async (_what, change, message) => {
    const exc = await tamper(change);
    expect(exc).toBeInstanceOf(AttachmentTampered);
    expect((exc as AttachmentTampered).code).toBe("attachment_tampered");
    expect((exc as Error).message).toMatch(message);
  });

  it("refuses a wrong digest although the MAC is right", async () => {
    const [blob] = await encryptAttachment(data, KEY, IV);
    await expect(decryptAttachment(blob, KEY, new Uint8Array(32), data.length)).rejects.toThrow(
      /digest/,
    );
  });

  it("refuses hidden bytes after the declared size (a sender that lies about size)", async () => {
    // 1000 real bytes encrypted honestly, then claimed to be 999: byte 1000 is not zero.
    const [blob, , digest] = await encryptAttachment(pattern(1000), KEY, IV);
    expect(paddedSize(999)).toBe(paddedSize(1000));
    const dec = new AttachmentDecryptor(KEY, 999);
    const verifier = new AttachmentVerifier(KEY, digest, 999);
    verifier.update(blob);
    verifier.finish();
    await expect(dec.update(blob).then(() => dec.finish())).rejects.toThrow(/non-zero bytes/);
  });
});

describe("bad arguments are attachment_invalid", () => {
  it("checks key, iv, size and the byte count", async () => {
    const invalid = (f: () => unknown) => {
      try {
        f();
      } catch (exc) {
        return (exc as CryptoError).code;
      }
      return null;
    };
    expect(invalid(() => new AttachmentEncryptor(new Uint8Array(32), 1))).toBe(
      "attachment_invalid",
    );
    expect(invalid(() => new AttachmentEncryptor(KEY, 1, new Uint8Array(8)))).toBe(
      "attachment_invalid",
    );
    expect(invalid(() => paddedSize(2 ** 40 + 1))).toBe("attachment_invalid");
    expect(invalid(() => paddedSize(1.5))).toBe("attachment_invalid");
    const enc = new AttachmentEncryptor(newKey(), 2);
    await expect(enc.update(new Uint8Array(3))).rejects.toThrow(/more than the declared 2 bytes/);
    await expect(enc.finish()).rejects.toThrow(/0 bytes were fed/);
    expect(() => enc.digest).toThrow(/only after/);
  });
});
