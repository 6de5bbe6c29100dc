/**
 * Loading libolm (the @towns-protocol/olm WebAssembly build; the choice is argued in
 * docs/security.md, "Browser client crypto") and a byte-exact bridge to its C API.
 *
 * Why a bridge: libolm's JavaScript wrapper takes and returns plaintexts as JavaScript strings,
 * UTF-8 encoded on the way in and decoded up to the first NUL on the way out. Porch plaintexts
 * are bytes: a content's JSON followed by the 0x80 marker and zeros (docs/protocol.md,
 * "Padding"), which no string round-trips. Emscripten publishes the C functions (olm.h) on the
 * module object it is initialised with, so we call olm_encrypt / olm_decrypt /
 * olm_group_encrypt / olm_group_decrypt on buffers we fill ourselves, with the same pointers
 * the wrapper uses. Everything else (accounts, session set-up, pickles) goes through the
 * wrapper, whose string arguments there are base64 or JSON.
 */

import Olm from "@towns-protocol/olm";
import type { OlmImpl } from "@towns-protocol/olm";
import { b64decode, b64encode, utf8decode, utf8encode } from "../protocol/codec";
import { BAD_KEY, CryptoError, DecryptError } from "./errors";

type Fn = (...args: number[]) => number;

/** The part of the Emscripten module (olm.h names with a leading "_") that the bridge uses. */
interface RawApi {
  HEAPU8: Uint8Array;
  _malloc: Fn;
  _free: Fn;
  _olm_error: Fn;
  _olm_encrypt_random_length: Fn;
  _olm_encrypt_message_type: Fn;
  _olm_encrypt_message_length: Fn;
  _olm_encrypt: Fn;
  _olm_decrypt_max_plaintext_length: Fn;
  _olm_decrypt: Fn;
  _olm_session_last_error: Fn;
  _olm_group_encrypt_message_length: Fn;
  _olm_group_encrypt: Fn;
  _olm_outbound_group_session_last_error: Fn;
  _olm_group_decrypt_max_plaintext_length: Fn;
  _olm_group_decrypt: Fn;
  _olm_inbound_group_session_last_error: Fn;
}

/** What the bridge needs of a wrapper object: its pointer into the wasm heap. */
interface Pointer {
  ptr: number;
}

export interface Libolm {
  olm: OlmImpl;
  raw: RawApi;
}

let loading: Promise<Libolm> | null = null;

/** Initialise libolm once; `locateFile` lets a page say where olm.wasm is served from. */
export function loadOlm(locateFile?: (path: string) => string): Promise<Libolm> {
  loading ??= (async () => {
    const module: Partial<RawApi> & { locateFile?: (path: string) => string } = {};
    if (locateFile) module.locateFile = locateFile;
    const olm = await Olm.initAsync(module);
    for (const name of ["_olm_encrypt", "_olm_group_decrypt", "_malloc"] as const) {
      if (typeof module[name] !== "function") {
        throw new CryptoError(`this libolm build does not publish ${name}`, BAD_KEY);
      }
    }
    return { olm, raw: module as RawApi };
  })();
  return loading;
}

function cString(raw: RawApi, ptr: number): string {
  const heap = raw.HEAPU8;
  let end = ptr;
  while (heap[end] !== 0) end++;
  return utf8decode(heap.slice(ptr, end));
}

/** Heap buffers that are zeroed and freed together (plaintext never lingers in the heap). */
class Scratch {
  readonly #raw: RawApi;
  readonly #held: Array<[number, number]> = [];

  constructor(raw: RawApi) {
    this.#raw = raw;
  }

  alloc(length: number, content?: Uint8Array): number {
    const ptr = this.#raw._malloc(Math.max(length, 1));
    this.#held.push([ptr, length]);
    if (content) this.#raw.HEAPU8.set(content, ptr); // HEAPU8 is re-read: memory may grow
    return ptr;
  }

  read(ptr: number, length: number): Uint8Array {
    return this.#raw.HEAPU8.slice(ptr, ptr + length);
  }

  release(): void {
    for (const [ptr, length] of this.#held) {
      this.#raw.HEAPU8.fill(0, ptr, ptr + length);
      this.#raw._free(ptr);
    }
  }
}

function check(
  lib: Libolm,
  result: number,
  lastError: Fn,
  ptr: number,
  decrypting: boolean,
): number {
  if (result !== lib.raw._olm_error()) return result;
  const reason = cString(lib.raw, lastError(ptr));
  if (decrypting) throw new DecryptError(`libolm: ${reason}`);
  throw new CryptoError(`libolm: ${reason}`, BAD_KEY);
}

/** olm_encrypt on raw plaintext bytes: the message type and its base64 body. */
export function sessionEncrypt(lib: Libolm, session: unknown, plaintext: Uint8Array) {
  const { raw } = lib;
  const ptr = (session as Pointer).ptr;
  const err = raw._olm_session_last_error;
  const mem = new Scratch(raw);
  try {
    const randomLength = raw._olm_encrypt_random_length(ptr);
    const type = check(lib, raw._olm_encrypt_message_type(ptr), err, ptr, false);
    const messageLength = raw._olm_encrypt_message_length(ptr, plaintext.length);
    const random = globalThis.crypto.getRandomValues(new Uint8Array(randomLength));
    const plainPtr = mem.alloc(plaintext.length, plaintext);
    const randomPtr = mem.alloc(randomLength, random);
    random.fill(0);
    const messagePtr = mem.alloc(messageLength);
    const args = [
      ptr,
      plainPtr,
      plaintext.length,
      randomPtr,
      randomLength,
      messagePtr,
      messageLength,
    ];
    check(lib, raw._olm_encrypt(...args), err, ptr, false);
    return { type, body: utf8decode(mem.read(messagePtr, messageLength)) };
  } finally {
    mem.release();
  }
}

/** olm_decrypt of a base64 body to raw plaintext bytes; DecryptError on failure. */
export function sessionDecrypt(
  lib: Libolm,
  session: unknown,
  type: number,
  body: string,
): Uint8Array {
  const { raw } = lib;
  const ptr = (session as Pointer).ptr;
  const err = raw._olm_session_last_error;
  const message = asciiBytes(body);
  const mem = new Scratch(raw);
  try {
    // libolm decodes the base64 in place, so the length query and the decryption each need
    // their own copy of the message.
    const probe = mem.alloc(message.length, message);
    const max = check(
      lib,
      raw._olm_decrypt_max_plaintext_length(ptr, type, probe, message.length),
      err,
      ptr,
      true,
    );
    const messagePtr = mem.alloc(message.length, message);
    const plainPtr = mem.alloc(max);
    const length = check(
      lib,
      raw._olm_decrypt(ptr, type, messagePtr, message.length, plainPtr, max),
      err,
      ptr,
      true,
    );
    return mem.read(plainPtr, length);
  } finally {
    mem.release();
  }
}

/** olm_group_encrypt: raw plaintext bytes in, the Megolm message's raw bytes out. */
export function groupEncrypt(lib: Libolm, session: unknown, plaintext: Uint8Array): Uint8Array {
  const { raw } = lib;
  const ptr = (session as Pointer).ptr;
  const err = raw._olm_outbound_group_session_last_error;
  const mem = new Scratch(raw);
  try {
    const messageLength = raw._olm_group_encrypt_message_length(ptr, plaintext.length);
    const plainPtr = mem.alloc(plaintext.length, plaintext);
    const messagePtr = mem.alloc(messageLength);
    check(
      lib,
      raw._olm_group_encrypt(ptr, plainPtr, plaintext.length, messagePtr, messageLength),
      err,
      ptr,
      false,
    );
    return b64decode(utf8decode(mem.read(messagePtr, messageLength)));
  } finally {
    mem.release();
  }
}

/** olm_group_decrypt of a Megolm message's raw bytes: plaintext bytes and message index. */
export function groupDecrypt(lib: Libolm, session: unknown, message: Uint8Array) {
  const { raw } = lib;
  const ptr = (session as Pointer).ptr;
  const err = raw._olm_inbound_group_session_last_error;
  const encoded = asciiBytes(b64encode(message));
  const mem = new Scratch(raw);
  try {
    const probe = mem.alloc(encoded.length, encoded);
    const max = check(
      lib,
      raw._olm_group_decrypt_max_plaintext_length(ptr, probe, encoded.length),
      err,
      ptr,
      true,
    );
    const messagePtr = mem.alloc(encoded.length, encoded);
    const plainPtr = mem.alloc(max);
    const indexPtr = mem.alloc(4);
    const length = check(
      lib,
      raw._olm_group_decrypt(ptr, messagePtr, encoded.length, plainPtr, max, indexPtr),
      err,
      ptr,
      true,
    );
    const index = new DataView(mem.read(indexPtr, 4).buffer).getUint32(0, true); // wasm is little-endian
    return { plaintext: mem.read(plainPtr, length), index };
  } finally {
    mem.release();
  }
}

/** A base64 message as the bytes libolm parses; DecryptError if it is not base64. */
function asciiBytes(text: string): Uint8Array {
  try {
    b64decode(text);
  } catch {
    throw new DecryptError("the message body is not base64");
  }
  return utf8encode(text);
}
