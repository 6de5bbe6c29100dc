/**
 * Sealing at rest (docs/protocol.md section 9, the browser's version): one AES-256-GCM key
 * per profile, made by WebCrypto as non-extractable and kept in IndexedDB as a CryptoKey
 * object (structured-cloneable; its bytes never reach JavaScript). Each sealed value is
 * bound to its slot (store and key) as associated data, so values cannot be swapped.
 */

import { concatBytes, utf8encode } from "../protocol/codec";

export const IV_BYTES = 12;

export class StoreError extends Error {
  readonly code: string;

  constructor(message: string, code = "store_error") {
    super(message);
    this.name = "StoreError";
    this.code = code;
  }
}

export class Sealer {
  constructor(readonly key: CryptoKey) {}

  static async generate(): Promise<Sealer> {
    const key = await globalThis.crypto.subtle.generateKey(
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    );
    return new Sealer(key);
  }

  async seal(slot: string, plaintext: Uint8Array): Promise<Uint8Array> {
    const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const sealed = await globalThis.crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: utf8encode(slot) },
      this.key,
      concatBytes(plaintext),
    );
    return concatBytes(iv, new Uint8Array(sealed));
  }

  async open(slot: string, sealed: Uint8Array): Promise<Uint8Array> {
    try {
      const plain = await globalThis.crypto.subtle.decrypt(
        { name: "AES-GCM", iv: sealed.slice(0, IV_BYTES), additionalData: utf8encode(slot) },
        this.key,
        sealed.slice(IV_BYTES),
      );
      return new Uint8Array(plain);
    } catch {
      throw new StoreError(
        "stored data could not be unsealed (it was changed, or belongs to another profile); sign out and register again",
        "store_tampered",
      );
    }
  }
}
