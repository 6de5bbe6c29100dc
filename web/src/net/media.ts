/**
 * Attachment transfers in the browser (docs/protocol.md, "Media"; mirrors
 * src/porch/client/media_upload.py, media_download.py and media_api.py).
 *
 * Upload: encrypt the prepared file (crypto/attachment.ts) chunk by chunk into a Blob, ask for
 * a slot, PUT each part to its signed URL (XMLHttpRequest, for upload progress), complete.
 * A dropped connection, a 5xx or an expired part URL costs one attempt of MAX_ATTEMPTS: the
 * server is asked which parts it holds and only the missing ones go again. A failed upload
 * gives its slot up (DELETE), so it does not count against the account's pending slots.
 *
 * Download: ask for the signed blob URL, fetch the blob (no credentials: the URL is the
 * capability), verify length, MAC and digest before any plaintext exists, then decrypt.
 */

import {
  AttachmentDecryptor,
  AttachmentEncryptor,
  AttachmentVerifier,
  blobSize,
  newKey,
} from "../crypto/attachment";
import { AttachmentTampered } from "../crypto/errors";
import type { Attachment } from "../crypto/rich";
import { concatBytes } from "../protocol/codec";
import { ClientError, ServerError, ServerUnreachable } from "../core/errors";
import type { HttpApi } from "./http";

export const MAX_FILE_BYTES = 100 * 1024 * 1024; // the server's default PORCH_MEDIA_MAX_BYTES
export const MAX_PARTS = 10_000;
export const MAX_URL_CHARS = 8192;
export const MAX_PART_BYTES = 5 * 2 ** 30;
export const MAX_ATTEMPTS = 6;
export const BACKOFF_MS = [200, 500, 1000, 2000, 4000];
const CHUNK_BYTES = 1 << 20;
const ABANDON_MS = 2000;
const ENCRYPT_SHARE = 0.1; // of the progress bar

/** How far a transfer is, 0 to 1. */
export type Progress = (fraction: number) => void;
export type Sleep = (ms: number) => Promise<void>;
const sleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export interface Slot {
  id: string;
  partSize: number;
  urls: Map<number, string>;
  received: Set<number>;
}

export interface Uploaded {
  id: string;
  key: Uint8Array;
  digest: Uint8Array;
  blobBytes: number;
}

/** 1536 -> "1.5 kB": decimal units, as the server words sizes (media_http.human_size). */
export function humanSize(n: number): string {
  if (n < 1000) return `${n} bytes`;
  const units: Array<[string, number]> = [
    ["kB", 1e3],
    ["MB", 1e6],
    ["GB", 1e9],
  ];
  const [unit, scale] = units.find(([, s]) => n < s * 1000) ?? ["TB", 1e12];
  return `${(n / scale).toFixed(1)} ${unit}`.replace(".0 ", " ");
}

function bad(what: string): ClientError {
  return new ClientError(
    `the server's answer about an attachment is malformed (${what}); check that the server runs a compatible Porch version`,
    "bad_response",
  );
}

function int(body: any, name: string, low: number, high: number): number {
  const value = body?.[name];
  if (!Number.isSafeInteger(value) || value < low || value > high)
    throw bad(`${name} missing or out of range`);
  return value as number;
}

function url(value: unknown): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_URL_CHARS)
    throw bad("a URL missing or too long");
  return value;
}

export function parseSlot(body: any): Slot {
  const parts = body?.parts ?? [];
  if (!Array.isArray(parts) || parts.length > MAX_PARTS)
    throw bad(`parts is not a list of at most ${MAX_PARTS}`);
  const received = new Set<number>();
  const listed = body?.received ?? [];
  if (!Array.isArray(listed) || listed.length > MAX_PARTS) throw bad("received is not a list");
  for (const item of listed) {
    if (typeof item === "object" && item !== null) received.add(int(item, "n", 1, MAX_PARTS));
    else if (Number.isSafeInteger(item) && item >= 1 && item <= MAX_PARTS) received.add(item);
    else throw bad("received lists an invalid part");
  }
  if (typeof body?.id !== "string" || !/^[A-Za-z0-9_-]{22}$/.test(body.id))
    throw bad("the media id");
  return {
    id: body.id,
    partSize: int(body, "part_size", 1, MAX_PART_BYTES),
    urls: new Map(parts.map((p: any) => [int(p, "n", 1, MAX_PARTS), url(p?.url)])),
    received,
  };
}

/** Encrypt a file into its blob, reading and encrypting one chunk at a time. */
export async function encryptFile(
  data: Blob,
  key: Uint8Array = newKey(),
  progress?: (done: number, total: number) => void,
): Promise<{ blob: Blob; key: Uint8Array; digest: Uint8Array }> {
  const encryptor = new AttachmentEncryptor(key, data.size);
  const out: BlobPart[] = [];
  for (let pos = 0; pos < data.size; pos += CHUNK_BYTES) {
    const chunk = new Uint8Array(await data.slice(pos, pos + CHUNK_BYTES).arrayBuffer());
    out.push(new Uint8Array(await encryptor.update(chunk)));
    progress?.(Math.min(pos + CHUNK_BYTES, data.size), data.size);
  }
  for await (const piece of encryptor.finishChunks()) out.push(new Uint8Array(piece));
  return { blob: new Blob(out), key, digest: encryptor.digest };
}

/** media_too_large, worded in the file's own size (the server measured the blob). */
function tooLarge(exc: ServerError, size: number): ServerError {
  const said = exc.message.replace(/^the file is [^;]*;/, `the file is ${humanSize(size)};`);
  return new ServerError(exc.code, `${said}; send a smaller file`, exc.status, exc.details);
}

class Retry extends Error {}

/** PUT one part; its ETag. Network errors, 5xx, 403 (expired URL), 408 and 429 retry. */
function putPart(target: string, body: Blob, onBytes: (sent: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", target);
    xhr.upload.onprogress = (ev) => onBytes(ev.loaded);
    xhr.onerror = () => reject(new Retry("the connection dropped"));
    xhr.ontimeout = () => reject(new Retry("timed out"));
    xhr.timeout = 120_000;
    xhr.onload = () => {
      const status = xhr.status;
      if (status >= 500 || [403, 408, 429].includes(status)) {
        reject(new Retry(`HTTP ${status}`));
        return;
      }
      if (status < 200 || status >= 300) {
        reject(failureOf(status, xhr.responseText, "upload"));
        return;
      }
      // With the S3 backend the part went to the object store, whose CORS rule must expose
      // ETag for this to be readable (docs/deploy.md, "The S3 bucket's CORS rule").
      const etag = xhr.getResponseHeader("ETag") ?? "";
      if (!etag || etag.length > 200) {
        reject(
          new ClientError(
            "the media storage did not let the browser read the ETag of an uploaded part, so the upload cannot finish; nothing was sent; ask the server's operator to expose ETag in the media bucket's CORS rule",
            "bad_response",
          ),
        );
        return;
      }
      resolve(etag);
    };
    xhr.send(body);
  });
}

function failureOf(status: number, text: string, what: string): ClientError {
  try {
    const err = JSON.parse(text)?.error;
    if (err && typeof err.code === "string")
      return new ServerError(
        err.code.slice(0, 64),
        String(err.message ?? "").slice(0, 500),
        status,
      );
  } catch {
    /* not Porch's JSON */
  }
  return new ServerError(
    "http_error",
    `the media storage answered HTTP ${status} to the ${what}; try again later, or ask the server's operator to check the media backend`,
    status,
  );
}

class Attempts {
  count = 0;
  constructor(
    private readonly what: string,
    private readonly giveUp: string,
    private readonly wait: Sleep,
  ) {}

  async failed(why: string): Promise<void> {
    this.count += 1;
    if (this.count >= MAX_ATTEMPTS)
      throw new ServerUnreachable(
        `the ${this.what} failed ${this.count} times (${why}); ${this.giveUp}`,
      );
    await this.wait(BACKOFF_MS[Math.min(this.count, BACKOFF_MS.length) - 1]!);
  }
}

export class MediaTransfers {
  constructor(
    private readonly api: HttpApi,
    private readonly wait: Sleep = sleep,
  ) {}

  #resolve(target: string): string {
    return new URL(target, this.api.baseUrl || globalThis.location?.href).toString();
  }

  /** Encrypt and upload `data`; the pointer's id, key and digest. Nothing is sent on failure. */
  async upload(data: Blob, recipients: number | null, progress?: Progress): Promise<Uploaded> {
    if (data.size > MAX_FILE_BYTES)
      throw new ClientError(
        `the file is ${humanSize(data.size)}; a browser can send at most ${humanSize(MAX_FILE_BYTES)}`,
        "media_too_large",
      );
    // Encrypting is the first tenth of the bar, the transfer the rest.
    const { blob, key, digest } = await encryptFile(data, newKey(), (done, total) =>
      progress?.((ENCRYPT_SHARE * done) / Math.max(total, 1)),
    );
    const request: Record<string, number> = { size: blob.size };
    if (recipients !== null) request.recipients = Math.max(1, Math.min(recipients, 5000));
    let slot: Slot;
    try {
      slot = parseSlot(await this.api.call("POST", "/v1/media/uploads", request));
    } catch (exc) {
      if (exc instanceof ServerError && exc.code === "media_too_large")
        throw tooLarge(exc, data.size);
      throw exc;
    }
    try {
      await this.#transfer(slot, blob, (sent) =>
        progress?.(ENCRYPT_SHARE + ((1 - ENCRYPT_SHARE) * sent) / blob.size),
      );
    } catch (exc) {
      await this.#abandon(slot.id);
      throw exc;
    }
    if (blob.size !== blobSize(data.size)) throw bad("the blob size");
    return { id: slot.id, key, digest, blobBytes: blob.size };
  }

  async #abandon(id: string): Promise<void> {
    try {
      await Promise.race([
        this.api.call("DELETE", `/v1/media/uploads/${id}`),
        new Promise((resolve) => setTimeout(resolve, ABANDON_MS)),
      ]);
    } catch {
      /* the server's sweep frees it */
    }
  }

  async #transfer(slot: Slot, blob: Blob, progress: (sent: number) => void): Promise<void> {
    const count = Math.ceil(blob.size / slot.partSize);
    const wanted = [...Array(count).keys()].map((i) => i + 1);
    if (slot.urls.size !== count || !wanted.every((n) => slot.urls.has(n)))
      throw new ClientError(
        `the server offered ${slot.urls.size} upload parts for a blob that needs ${count}; check that the server runs a compatible Porch version`,
        "bad_response",
      );
    const etags = new Map<number, string>();
    let held = new Set<number>();
    let todo = slot.urls;
    const attempts = new Attempts(
      "upload",
      "nothing was sent; check the connection and send the file again",
      this.wait,
    );
    const partBytes = (n: number) => Math.min(slot.partSize, blob.size - (n - 1) * slot.partSize);
    for (;;) {
      try {
        for (const n of [...todo.keys()].sort((a, b) => a - b)) {
          if (etags.has(n)) continue;
          const start = (n - 1) * slot.partSize;
          const before = [...etags.keys(), ...held].reduce((sum, k) => sum + partBytes(k), 0);
          const part = blob.slice(start, start + partBytes(n));
          etags.set(
            n,
            await putPart(this.#resolve(todo.get(n)!), part, (s) => progress(before + s)),
          );
        }
        break;
      } catch (exc) {
        if (!(exc instanceof Retry)) throw exc;
        await attempts.failed(exc.message);
      }
      let status: Slot;
      try {
        status = parseSlot(await this.api.call("GET", `/v1/media/uploads/${slot.id}`));
      } catch (exc) {
        if (exc instanceof ServerUnreachable) continue;
        throw exc;
      }
      // The server is the authority on what it holds (media_upload.py).
      for (const n of [...etags.keys()]) if (!status.received.has(n)) etags.delete(n);
      held = new Set([...status.received].filter((n) => !etags.has(n)));
      todo = status.urls;
    }
    if (new Set([...etags.keys(), ...held]).size < count)
      throw new ClientError(
        "the server neither holds nor offers URLs for some parts of the upload; send the file again",
        "bad_response",
      );
    const parts = [...etags].sort((a, b) => a[0] - b[0]).map(([n, etag]) => ({ n, etag }));
    await this.api.call("POST", `/v1/media/uploads/${slot.id}/complete`, { parts });
  }

  /** Fetch, verify, then decrypt one attachment; its plaintext. */
  async download(pointer: Attachment, progress?: Progress): Promise<Uint8Array> {
    if (pointer.size > MAX_FILE_BYTES)
      throw new ClientError(
        `this attachment is ${humanSize(pointer.size)}; a browser can open at most ${humanSize(MAX_FILE_BYTES)}`,
        "media_too_large",
      );
    const answer = await this.api.call("GET", `/v1/media/${pointer.id}`);
    const target = this.#resolve(url(answer?.url));
    const expected = blobSize(pointer.size);
    let response: Response;
    try {
      response = await fetch(target, { credentials: "omit", redirect: "error" });
    } catch {
      throw new ServerUnreachable(
        "the attachment could not be fetched; check your connection and try again",
      );
    }
    if (!response.ok || !response.body)
      throw failureOf(response.status, await response.text().catch(() => ""), "download");
    const verifier = new AttachmentVerifier(pointer.key, pointer.digest, pointer.size);
    const chunks: Uint8Array[] = [];
    let received = 0;
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
      if (received > expected) {
        await reader.cancel();
        throw new AttachmentTampered("the attachment is longer than its pointer says");
      }
      verifier.update(value); // pass 1: no plaintext until the MAC and digest match
      chunks.push(value);
      progress?.(received / expected);
    }
    verifier.finish();
    const decryptor = new AttachmentDecryptor(pointer.key, pointer.size);
    const plain: Uint8Array[] = [];
    for (const chunk of chunks) plain.push(await decryptor.update(chunk));
    plain.push(await decryptor.finish());
    return concatBytes(...plain);
  }
}
