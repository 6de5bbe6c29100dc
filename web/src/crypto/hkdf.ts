/**
 * HKDF-SHA256 (RFC 5869) through WebCrypto, for the constructions that derive keys from a
 * secret: the provisioning cipher (./provisioning) and the profile sealer's subkeys
 * (src/porch/crypto/at_rest.py `Sealer.subkey`, checked by the `subkey` vectors).
 */

import { ab, utf8encode } from "../protocol/codec";

export async function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const subtle = globalThis.crypto.subtle;
  const key = await subtle.importKey("raw", ab(ikm), "HKDF", false, ["deriveBits"]);
  const bits = await subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: ab(salt), info: ab(info) },
    key,
    length * 8,
  );
  return new Uint8Array(bits);
}

/**
 * A 32-byte key for another purpose: no salt (RFC 5869 §2.2: a hash length of zeros, which
 * an empty HMAC key is), info "porch/" + label. The same bytes as Python's Sealer.subkey.
 */
export function subkey(key: Uint8Array, label: string): Promise<Uint8Array<ArrayBuffer>> {
  return hkdfSha256(key, new Uint8Array(0), utf8encode(`porch/${label}`), 32);
}
