/**
 * Errors of the crypto layer, each with a stable machine-readable `code`: the same codes as
 * src/porch/crypto/errors.py, so both clients report a failure the same way.
 */

export const BAD_SIGNATURE = "bad_signature";
export const DECRYPT_FAILED = "decrypt_failed";
export const BAD_CONTENT = "bad_content";
export const BAD_KEY = "bad_key";
export const REPLAYED = "replayed";
export const UNKNOWN_INDEX = "unknown_index";
export const ATTACHMENT_TAMPERED = "attachment_tampered";
export const ATTACHMENT_INVALID = "attachment_invalid";
export const BAD_SAFETY_NUMBER = "bad_safety_number";

export class CryptoError extends Error {
  readonly code: string;

  constructor(message: string, code: string = BAD_KEY) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A signature does not verify, or the key or signature is malformed. */
export class SignatureError extends CryptoError {
  constructor(message: string) {
    super(message, BAD_SIGNATURE);
  }
}

/** A ciphertext could not be decrypted or authenticated; Megolm refines the code. */
export class DecryptError extends CryptoError {
  constructor(message: string, code: string = DECRYPT_FAILED) {
    super(message, code);
  }
}

/** A decrypted content is malformed (padding, JSON, types, limits). */
export class ContentError extends CryptoError {
  constructor(message: string) {
    super(message, BAD_CONTENT);
  }
}

/** A downloaded attachment fails its length, digest, MAC or padding check. */
export class AttachmentTampered extends CryptoError {
  constructor(message: string) {
    super(message, ATTACHMENT_TAMPERED);
  }
}

// Linking a device (docs/protocol.md, "Provisioning (linking a device)").
export const BAD_PROVISIONING = "bad_provisioning";
export const UNSUPPORTED_VERSION = "unsupported_version";

/** A malformed provisioning URI or provision message, or a version this client lacks. */
export class ProvisioningError extends CryptoError {
  constructor(message: string, code: string = BAD_PROVISIONING) {
    super(message, code);
  }
}
