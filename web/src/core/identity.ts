/**
 * A contact's safety number and its verification (mirrors src/porch/client/identities.py).
 * The number is Signal's numeric fingerprint (../crypto/safety, docs/protocol.md "Safety
 * numbers") over this account's master key and the contact's pinned one. The caller fetches
 * the contact's keys first and passes them through the core's `checkBundle`, so a key change
 * is pinned and noted as every bundle's is (./keys); only when the directory cannot be reached
 * is the pin used as it is.
 */

import { type SafetyNumber, safetyNumber } from "../crypto/safety";
import { hexdecode } from "../protocol/codec";
import { IdentityError } from "./errors";
import type { Contact } from "./types";
import { type Verification, verification } from "./verified";

export interface ContactIdentity {
  accountId: string;
  masterKey: string; // base64, as the key directory and the store spell it
  safetyNumber: SafetyNumber;
  verification: Verification;
}

export const GROUPS_PER_LINE = 4; // three lines of four groups, as Signal and `porch verify` show

export async function contactIdentity(
  ownAccountId: string,
  ownMasterKey: string,
  contact: Contact | null,
): Promise<ContactIdentity> {
  if (!contact?.masterKey) {
    throw new IdentityError(
      "this contact's keys are not known yet; connect to the server and open it again",
    );
  }
  if (contact.accountId === ownAccountId) {
    throw new IdentityError("a safety number is between two accounts; open another one");
  }
  let number: SafetyNumber;
  try {
    number = await safetyNumber(ownAccountId, ownMasterKey, contact.accountId, contact.masterKey);
  } catch (exc) {
    if (!(exc instanceof RangeError)) throw exc;
    throw new IdentityError(`no safety number with ${contact.label}: ${exc.message}`);
  }
  return {
    accountId: contact.accountId,
    masterKey: contact.masterKey,
    safetyNumber: number,
    verification: verification(contact),
  };
}

/** The 12 groups of five digits in lines of four. */
export function digitLines(number: SafetyNumber): string[][] {
  const groups = number.groups();
  const lines: string[][] = [];
  for (let i = 0; i < groups.length; i += GROUPS_PER_LINE)
    lines.push(groups.slice(i, i + GROUPS_PER_LINE));
  return lines;
}

export const MAX_SCAN_CHARS = 2048; // twice the largest payload ../crypto/safety reads, in hex

/** The other side's payload as `porch verify --json` prints it (hex); IdentityError otherwise. */
export function parseScanned(text: string): Uint8Array {
  const compact = text.replace(/\s+/g, "");
  if (!compact || compact.length > MAX_SCAN_CHARS || !/^(?:[0-9a-fA-F]{2})+$/.test(compact)) {
    throw new IdentityError(
      "that is not a safety number code: paste the other side's code in hex (the qr field of `porch verify --json`)",
    );
  }
  return hexdecode(compact.toLowerCase());
}
