/**
 * The attachment cipher (docs/protocol.md, "Attachment encryption"); mirrors
 * src/porch/crypto/attachment.py. A blob is
 *
 *     iv || AES-256-CBC(key[:32], iv, PKCS#7(plaintext || zeros to padded_size)) ||
 *     HMAC-SHA256(key[32:], iv || ciphertext)
 *
 * and its digest is SHA-256(blob). Streaming in constant memory, chunk by chunk:
 *
 * - AES-CBC is WebCrypto's, which is one-shot and always PKCS#7-pads. CBC's ciphertext block i
 *   is E(P_i XOR C_{i-1}) and depends on nothing else, so encrypting a run of whole blocks with
 *   IV = the previous run's last ciphertext block yields exactly the blocks one long CBC pass
 *   would, followed by one block of padding (a full 0x10 block, the run being block-aligned)
 *   that we drop; only the last run keeps WebCrypto's padding, which is the blob's real one.
 *   Decrypting a middle run needs the same in reverse: WebCrypto refuses a run without valid
 *   padding, so we append the block E(0x10^16 XOR C_last) (one more WebCrypto encryption),
 *   which decrypts to a full padding block that WebCrypto strips.
 * - SHA-256 and HMAC-SHA256 must be incremental, which WebCrypto's digest and sign are not
 *   (they take the whole message); they come from @noble/hashes (audited, dependency-free).
 *
 * Receiving is two passes, as in Python: AttachmentVerifier checks length, MAC and digest
 * without releasing plaintext, then AttachmentDecryptor yields it.
 */

import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { ab, concatBytes, constantTimeEqual } from "../protocol/codec";
import { ATTACHMENT_INVALID, AttachmentTampered, CryptoError } from "./errors";

export const KEY_BYTES = 64;
export const AES_KEY_BYTES = 32;
export const IV_BYTES = 16;
export const MAC_BYTES = 32;
export const DIGEST_BYTES = 32;
export const BLOCK_BYTES = 16;
export const MAX_ATTACHMENT_SIZE = 2 ** 40;
export const MIN_PADDED_SIZE = 541;
export const BUCKET_GROWTH = 1.05;
// finishChunks() hands out the zero padding in pieces of this size.
export const TAIL_CHUNK_BYTES = 1 << 20;

type Hash = ReturnType<typeof sha256.create>;
type Mac = ReturnType<typeof hmac.create>;

const FULL_PAD_BLOCK = new Uint8Array(BLOCK_BYTES).fill(BLOCK_BYTES);

function invalid(message: string): never {
  throw new CryptoError(message, ATTACHMENT_INVALID);
}

function tampered(message: string): never {
  throw new AttachmentTampered(message);
}

function checkBytes(value: unknown, length: number, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    invalid(`the attachment ${what} must be ${length} bytes`);
  }
  return value;
}

function checkSize(size: unknown): number {
  if (
    typeof size !== "number" ||
    !Number.isSafeInteger(size) ||
    size < 0 ||
    size > MAX_ATTACHMENT_SIZE
  ) {
    invalid(`an attachment size must be an integer from 0 to ${MAX_ATTACHMENT_SIZE}`);
  }
  return size;
}

export function newKey(): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(KEY_BYTES));
}

/** Signal's bucket: doubles exactly as Signal (and Python) compute them; vectors pin edges. */
export function paddedSize(size: number): number {
  checkSize(size);
  if (size === 0) return MIN_PADDED_SIZE;
  const exponent = Math.ceil(Math.log(size) / Math.log(BUCKET_GROWTH));
  return Math.max(MIN_PADDED_SIZE, Math.floor(BUCKET_GROWTH ** exponent));
}

export function blobSize(size: number): number {
  return IV_BYTES + (Math.floor(paddedSize(size) / BLOCK_BYTES) + 1) * BLOCK_BYTES + MAC_BYTES;
}

async function aesKey(key: Uint8Array): Promise<CryptoKey> {
  return globalThis.crypto.subtle.importKey(
    "raw",
    key.slice(0, AES_KEY_BYTES),
    { name: "AES-CBC" },
    false,
    ["encrypt", "decrypt"],
  );
}

async function cbcEncrypt(key: CryptoKey, iv: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const out = await globalThis.crypto.subtle.encrypt(
    { name: "AES-CBC", iv: ab(iv) },
    key,
    ab(data),
  );
  return new Uint8Array(out);
}

/** Plaintext chunks in, blob bytes out; exactly `size` plaintext bytes must be fed. */
export class AttachmentEncryptor {
  readonly #key: Uint8Array;
  readonly #iv: Uint8Array;
  readonly #size: number;
  #aes: Promise<CryptoKey>;
  #chain: Uint8Array;
  #pending = new Uint8Array(0);
  #consumed = 0;
  #produced = 0;
  #mac: Mac;
  #hash: Hash = sha256.create();
  #digest: Uint8Array | null = null;

  constructor(key: Uint8Array, size: number, iv?: Uint8Array) {
    this.#key = checkBytes(key, KEY_BYTES, "key");
    this.#size = checkSize(size);
    this.#iv =
      iv === undefined
        ? globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES))
        : checkBytes(iv, IV_BYTES, "iv");
    this.#chain = this.#iv;
    this.#aes = aesKey(this.#key);
    this.#mac = hmac.create(sha256, this.#key.slice(AES_KEY_BYTES));
  }

  get consumed(): number {
    return this.#consumed;
  }

  get produced(): number {
    return this.#produced;
  }

  /** Encrypt the next plaintext bytes; the first call's output starts with the iv. */
  async update(chunk: Uint8Array): Promise<Uint8Array> {
    if (this.#digest !== null) invalid("the attachment is already encrypted");
    if (this.#consumed + chunk.length > this.#size) {
      invalid(`more than the declared ${this.#size} bytes were fed to the encryptor`);
    }
    this.#consumed += chunk.length;
    return this.#encryptBlocks(chunk);
  }

  /** The zero padding, the final PKCS#7 block and the MAC (see finishChunks). */
  async finish(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for await (const part of this.finishChunks()) parts.push(part);
    return concatBytes(...parts);
  }

  /**
   * What finish() returns, in pieces of about `chunkSize` bytes: the zero padding is up to 5%
   * of the size (5 MiB for 100 MiB), which a streaming uploader takes piece by piece.
   */
  async *finishChunks(chunkSize: number = TAIL_CHUNK_BYTES): AsyncGenerator<Uint8Array> {
    if (this.#digest !== null) invalid("the attachment is already encrypted");
    if (this.#consumed !== this.#size) {
      invalid(`${this.#consumed} bytes were fed to the encryptor, not ${this.#size}`);
    }
    if (!Number.isSafeInteger(chunkSize) || chunkSize < BLOCK_BYTES) {
      invalid(`the chunk size must be at least ${BLOCK_BYTES} bytes`);
    }
    for (let left = paddedSize(this.#size) - this.#size; left > 0; left -= chunkSize) {
      yield await this.#encryptBlocks(new Uint8Array(Math.min(chunkSize, left)));
    }
    const last = await cbcEncrypt(await this.#aes, this.#chain, this.#pending);
    this.#pending = new Uint8Array(0);
    const out = this.#emit(last);
    const tag = this.#mac.digest();
    this.#hash.update(tag);
    this.#produced += tag.length;
    this.#digest = this.#hash.digest();
    yield concatBytes(out, tag);
  }

  /** SHA-256 of the whole blob, once finish() has returned. */
  get digest(): Uint8Array {
    if (this.#digest === null) invalid("the digest is known only after the encryptor finished");
    return this.#digest;
  }

  async #encryptBlocks(data: Uint8Array): Promise<Uint8Array> {
    // CBC needs whole blocks; up to 15 bytes wait in `pending` for the next call.
    const buffer = this.#pending.length ? concatBytes(this.#pending, data) : data;
    const whole = buffer.length - (buffer.length % BLOCK_BYTES);
    this.#pending = buffer.slice(whole);
    if (whole === 0) return this.#emit(new Uint8Array(0));
    const run = await cbcEncrypt(await this.#aes, this.#chain, buffer.subarray(0, whole));
    const ciphertext = run.subarray(0, whole); // drop WebCrypto's padding block
    this.#chain = ciphertext.slice(whole - BLOCK_BYTES);
    return this.#emit(ciphertext);
  }

  #emit(ciphertext: Uint8Array): Uint8Array {
    const out = this.#produced ? ciphertext : concatBytes(this.#iv, ciphertext);
    this.#mac.update(out);
    this.#hash.update(out);
    this.#produced += out.length;
    return out;
  }
}

/** Counts a blob against its expected length and holds back the trailing MAC. */
class BlobReader {
  readonly #expected: number;
  #received = 0;
  #tail = new Uint8Array(0);

  constructor(size: number) {
    this.#expected = blobSize(size);
  }

  /** The bytes of the stream so far that are certainly not part of the trailing MAC. */
  read(chunk: Uint8Array): Uint8Array {
    this.#received += chunk.length;
    if (this.#received > this.#expected) tampered("the attachment is longer than its pointer says");
    const buffer = concatBytes(this.#tail, chunk);
    const cut = Math.max(0, buffer.length - MAC_BYTES);
    this.#tail = buffer.slice(cut);
    return buffer.subarray(0, cut);
  }

  /** The trailing MAC, once the whole blob has been read. */
  close(): Uint8Array {
    if (this.#received !== this.#expected)
      tampered("the attachment is shorter than its pointer says");
    return this.#tail;
  }
}

/** Pass 1 over a downloaded blob: length, MAC and digest; never any plaintext. */
export class AttachmentVerifier {
  readonly #digest: Uint8Array;
  readonly #reader: BlobReader;
  readonly #mac: Mac;
  readonly #hash: Hash = sha256.create();
  #done = false;

  constructor(key: Uint8Array, digest: Uint8Array, size: number) {
    checkBytes(key, KEY_BYTES, "key");
    this.#digest = checkBytes(digest, DIGEST_BYTES, "digest");
    this.#reader = new BlobReader(checkSize(size));
    this.#mac = hmac.create(sha256, key.slice(AES_KEY_BYTES));
  }

  update(chunk: Uint8Array): void {
    if (this.#done) invalid("the verifier already finished");
    const body = this.#reader.read(chunk);
    this.#hash.update(chunk);
    this.#mac.update(body);
  }

  /** Return if the blob is the one the pointer names; throw AttachmentTampered if not. */
  finish(): void {
    if (this.#done) invalid("the verifier already finished");
    this.#done = true;
    const tag = this.#reader.close();
    const actual = this.#hash.digest();
    if (!constantTimeEqual(this.#mac.digest(), tag)) {
      tampered("the attachment's MAC does not match its key");
    }
    if (!constantTimeEqual(actual, this.#digest)) {
      tampered("the attachment's digest does not match its pointer");
    }
  }
}

/** Pass 2, only after AttachmentVerifier passed: blob bytes in, plaintext (≤ size) out. */
export class AttachmentDecryptor {
  readonly #size: number;
  readonly #padded: number;
  readonly #reader: BlobReader;
  readonly #aes: Promise<CryptoKey>;
  #iv: Uint8Array = new Uint8Array(0);
  #chain: Uint8Array | null = null;
  // Ciphertext not yet decrypted: the last whole block always waits here, since only at the
  // end is it known whether it is the padding block.
  #pending: Uint8Array = new Uint8Array(0);
  #position = 0; // bytes of padded plaintext released or checked
  #done = false;

  constructor(key: Uint8Array, size: number) {
    checkBytes(key, KEY_BYTES, "key");
    this.#size = checkSize(size);
    this.#padded = paddedSize(size);
    this.#reader = new BlobReader(size);
    this.#aes = aesKey(key);
  }

  async update(chunk: Uint8Array): Promise<Uint8Array> {
    if (this.#done) invalid("the decryptor already finished");
    let body = this.#reader.read(chunk);
    if (this.#chain === null) {
      const need = IV_BYTES - this.#iv.length;
      this.#iv = concatBytes(this.#iv, body.subarray(0, need));
      body = body.subarray(need);
      if (this.#iv.length < IV_BYTES) return new Uint8Array(0);
      this.#chain = this.#iv;
    }
    const buffer = concatBytes(this.#pending, body);
    // Keep at least one whole block back (it may be the last) and any partial block.
    let whole = buffer.length - (buffer.length % BLOCK_BYTES);
    if (whole === buffer.length) whole -= BLOCK_BYTES;
    if (whole <= 0) {
      this.#pending = buffer;
      return new Uint8Array(0);
    }
    this.#pending = buffer.slice(whole);
    const run = buffer.subarray(0, whole);
    const aes = await this.#aes;
    const last = run.subarray(whole - BLOCK_BYTES);
    const forged = (await cbcEncrypt(aes, last, FULL_PAD_BLOCK)).subarray(0, BLOCK_BYTES);
    const plain = await this.#decrypt(aes, this.#chain, concatBytes(run, forged));
    this.#chain = last.slice();
    return this.#release(plain);
  }

  async finish(): Promise<Uint8Array> {
    if (this.#done) invalid("the decryptor already finished");
    this.#done = true;
    this.#reader.close();
    if (this.#chain === null || this.#pending.length === 0 || this.#pending.length % BLOCK_BYTES) {
      tampered("the attachment's block padding is malformed");
    }
    const plain = await this.#decrypt(await this.#aes, this.#chain, this.#pending);
    const out = this.#release(plain);
    if (this.#position !== this.#padded) {
      tampered("the attachment's padded length does not match its size");
    }
    return out;
  }

  async #decrypt(aes: CryptoKey, iv: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
    try {
      const out = await globalThis.crypto.subtle.decrypt(
        { name: "AES-CBC", iv: ab(iv) },
        aes,
        ab(data),
      );
      return new Uint8Array(out);
    } catch {
      // WebCrypto's only failure here is bad PKCS#7 padding in the blob's last block.
      tampered("the attachment's block padding is malformed");
    }
  }

  #release(data: Uint8Array): Uint8Array {
    const keep = Math.max(0, Math.min(data.length, this.#size - this.#position));
    const rest = data.subarray(keep);
    this.#position += data.length;
    if (this.#position > this.#padded) {
      tampered("the attachment's padded length does not match its size");
    }
    if (rest.some((byte) => byte !== 0))
      tampered("the attachment has non-zero bytes after its end");
    return data.slice(0, keep);
  }
}

/** One-shot encryption of a small attachment: [blob, key, digest]. */
export async function encryptAttachment(
  data: Uint8Array,
  key: Uint8Array = newKey(),
  iv?: Uint8Array,
): Promise<[Uint8Array, Uint8Array, Uint8Array]> {
  const encryptor = new AttachmentEncryptor(key, data.length, iv);
  const blob = concatBytes(await encryptor.update(data), await encryptor.finish());
  return [blob, key, encryptor.digest];
}

/** One-shot verify-then-decrypt; AttachmentTampered before any plaintext exists. */
export async function decryptAttachment(
  blob: Uint8Array,
  key: Uint8Array,
  digest: Uint8Array,
  size: number,
): Promise<Uint8Array> {
  const verifier = new AttachmentVerifier(key, digest, size);
  verifier.update(blob);
  verifier.finish();
  const decryptor = new AttachmentDecryptor(key, size);
  return concatBytes(await decryptor.update(blob), await decryptor.finish());
}
