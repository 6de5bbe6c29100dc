import { describe, expect, it } from "vitest";
import { ClientError } from "../../src/core/errors";
import { blobSize, decryptAttachment, encryptAttachment } from "../../src/crypto/attachment";
import { encryptFile, humanSize, parseSlot } from "../../src/net/media";
import { safeName } from "../../src/net/media_prep";

const ID = "AAAAAAAAAAAAAAAAAAAAAA";

describe("media transfers", () => {
  it("encrypts a file chunk by chunk into the blob the one-shot cipher makes", async () => {
    const data = new Uint8Array(3 * (1 << 20) + 17).map((_, i) => (i * 7) & 0xff);
    const key = new Uint8Array(64).fill(9);
    const seen: number[] = [];
    const { blob, digest } = await encryptFile(new Blob([data]), key, (done) => seen.push(done));
    expect(blob.size).toBe(blobSize(data.length));
    expect(seen.at(-1)).toBe(data.length);
    const bytes = new Uint8Array(await blob.arrayBuffer());
    const plain = await decryptAttachment(bytes, key, digest, data.length);
    // Compared as one string: a deep equal of 3 MiB element by element is very slow.
    expect(Buffer.from(plain).equals(Buffer.from(data))).toBe(true);
    const [, , oneShotDigest] = await encryptAttachment(data, key, bytes.slice(0, 16));
    expect(Buffer.from(oneShotDigest).equals(Buffer.from(digest))).toBe(true); // same key and iv: the same blob
  });

  it("takes a slot only within the protocol's bounds", () => {
    const slot = parseSlot({
      id: ID,
      part_size: 8 << 20,
      parts: [{ n: 1, url: "/v1/media/parts/x/1?exp=1&sig=s" }],
      received: [2, { n: 3, etag: '"e"' }],
    });
    expect(slot.partSize).toBe(8 << 20);
    expect([...slot.urls.keys()]).toEqual([1]);
    expect([...slot.received]).toEqual([2, 3]);
    const bad = [
      { id: "short", part_size: 1, parts: [] },
      { id: ID, part_size: 0, parts: [] },
      { id: ID, part_size: 1, parts: [{ n: 0, url: "/x" }] },
      { id: ID, part_size: 1, parts: [{ n: 1, url: "x".repeat(8193) }] },
      { id: ID, part_size: 1, parts: [], received: [true] },
    ];
    for (const body of bad) expect(() => parseSlot(body)).toThrow(ClientError);
  });

  it("words sizes and file names as the SDK does", () => {
    expect(humanSize(999)).toBe("999 bytes");
    expect(humanSize(1536)).toBe("1.5 kB");
    expect(humanSize(120_000_000)).toBe("120 MB");
    expect(safeName("../etc/passwd")).toBe(".._etc_passwd");
    expect(safeName("..")).toBe("file");
    expect(new TextEncoder().encode(safeName("é".repeat(200))).length).toBeLessThanOrEqual(255);
  });
});
