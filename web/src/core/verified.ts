/**
 * Verified contacts (mirrors src/porch/client/verified.py; docs/design.md, "Verified
 * contacts"). A contact row keeps the master key whose safety number the user compared
 * (`verifiedKey`). Verification is keyed on that key, not on a flag: when the pinned key
 * (`masterKey`, ./keys) moves, the contact is "verified, key changed" by itself, with nothing
 * to update. Pure functions over rows: the caller commits what they return.
 */

import { IdentityError } from "./errors";
import type { Contact } from "./types";

export const IDENTITY_CHANGED = "identity_changed"; // the send error code, as porch.client.verified

export type Verification = "unverified" | "verified" | "verified_key_changed";

export function verification(contact: Contact | null): Verification {
  const verified = contact?.verifiedKey ?? null;
  if (verified === null) return "unverified";
  return contact?.masterKey === verified ? "verified" : "verified_key_changed";
}

/**
 * The row with `masterKey` recorded as verified. The key must be the current pin, so the
 * number the user compared is the number recorded (Client.mark_verified does the same).
 */
export function markVerified(contact: Contact | null, masterKey: string): Contact {
  if (!contact || contact.masterKey !== masterKey) {
    throw new IdentityError(
      `the safety number with ${contact?.label ?? "this contact"} changed while it was compared; compare the new one`,
    );
  }
  return { ...contact, verifiedKey: masterKey };
}

/** A verified contact's changed key accepted without verifying it: unverified again. */
export function acceptIdentity(contact: Contact): Contact {
  return verification(contact) === "verified_key_changed"
    ? { ...contact, verifiedKey: null }
    : contact;
}
