/**
 * Byte encodings used on the wire (docs/protocol.md, section 2 "Encodings"); mirrors
 * src/porch/protocol/codec.py.
 *
 * Binary values travel as standard-alphabet base64 without padding, as vodozemac and Matrix
 * encode keys; decoders accept padded input too and refuse anything else (wrong alphabet,
 * impossible length). Media ids use the URL-safe alphabet (docs/protocol.md, "Media"). Written
 * here rather than with atob/btoa because those work on "binary strings", not bytes, and accept
 * whitespace that the Python decoder refuses.
 */

import { CodecError } from "./errors";

const STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function reverse(alphabet: string): Int16Array {
  const table = new Int16Array(128).fill(-1);
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
}

const STANDARD_INDEX = reverse(STANDARD);
const URLSAFE_INDEX = reverse(URLSAFE);

function encode(data: Uint8Array, alphabet: string): string {
  let out = "";
  let i = 0;
  for (; i + 2 < data.length; i += 3) {
    const n = (data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!;
    out += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]!;
    out += alphabet[n & 63]!;
  }
  const rest = data.length - i;
  if (rest === 1) {
    const n = data[i]! << 16;
    out += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (data[i]! << 16) | (data[i + 1]! << 8);
    out += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]!;
  }
  return out;
}

function decode(text: string, index: Int16Array): Uint8Array<ArrayBuffer> {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d) end--; // trailing "=" (Python rstrip)
  if (end % 4 === 1) throw new CodecError("invalid base64 length");
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? index[code]! : -1;
    if (value < 0) throw new CodecError("invalid base64: a character outside the alphabet");
    acc = (acc << 6) | value;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/** Standard base64 without padding (codec.b64encode). */
export function b64encode(data: Uint8Array): string {
  return encode(data, STANDARD);
}

/** Unpadded or padded standard base64; CodecError on anything else (codec.b64decode). */
export function b64decode(text: string): Uint8Array<ArrayBuffer> {
  return decode(text, STANDARD_INDEX);
}

/** URL-safe base64 without padding, as media ids are written. */
export function b64urlencode(data: Uint8Array): string {
  return encode(data, URLSAFE);
}

export function b64urldecode(text: string): Uint8Array {
  return decode(text, URLSAFE_INDEX);
}

export function hexencode(data: Uint8Array): string {
  let out = "";
  for (const byte of data) out += byte.toString(16).padStart(2, "0");
  return out;
}

export function hexdecode(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new CodecError("invalid hex");
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function utf8encode(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text);
}

/** Strict UTF-8 (CodecError on invalid bytes), as Python's bytes.decode("utf-8"). */
export function utf8decode(data: Uint8Array): string {
  try {
    return strictDecoder.decode(data);
  } catch {
    throw new CodecError("invalid UTF-8");
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Equal contents in time independent of where they differ (for MACs and safety numbers). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/**
 * The same bytes as a view WebCrypto accepts: TypeScript types its BufferSource as backed by
 * an ArrayBuffer, not a SharedArrayBuffer; a view of shared memory is copied.
 */
export function ab(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return data.buffer instanceof ArrayBuffer
    ? (data as Uint8Array<ArrayBuffer>)
    : new Uint8Array(data);
}
