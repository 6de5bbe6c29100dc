/**
 * Group invite links (mirrors src/porch/client/group_links.py; docs/protocol.md, "Group
 * invite links"):
 *
 *     porch://group?token=TOKEN#key=STATEKEY&epoch=N
 *
 * `token` is the server's invite token (43 characters of unpadded base64url); the fragment
 * holds the group state key of `epoch`, so that the joiner opens the group's name before and
 * after joining. The fragment never goes to the server: only `token` is posted to
 * `/v1/groups/join`. Anything malformed is a ClientError `bad_link` with a sentence saying
 * what is wrong, before any request.
 */

import { MAX_EPOCH, STATE_KEY_LEN } from "../crypto/group_state";
import { b64urldecode, b64urlencode } from "../protocol/codec";
import { ClientError } from "./errors";

export const MAX_LINK_LEN = 256; // the longest valid link is about 120 characters
export const MAX_PARAMS = 8;
export const TOKEN = /^[A-Za-z0-9_-]{43}$/;
const KEY = /^[A-Za-z0-9_-]{43}$/; // 32 bytes
const EPOCH = /^(0|[1-9][0-9]{0,9})$/;
// The scheme is case-insensitive (RFC 3986), the host is not (as urlsplit reads it).
const SHAPE = /^[Pp][Oo][Rr][Cc][Hh]:\/\/group\/?(?:\?([^#]*))?(?:#(.*))?$/;

export interface GroupLink {
  token: string;
  stateKey: Uint8Array;
  epoch: number;
}

function bad(message: string): never {
  throw new ClientError(`this is not a usable group link: ${message}`, "bad_link");
}

export function formatGroupLink(link: GroupLink): string {
  if (!TOKEN.test(link.token)) bad("the invite token must be 43 characters of base64url");
  if (link.stateKey.length !== STATE_KEY_LEN) bad(`the group key must be ${STATE_KEY_LEN} bytes`);
  if (!Number.isInteger(link.epoch) || link.epoch < 0 || link.epoch > MAX_EPOCH)
    bad("the key epoch must be an integer in 0..2**32-1");
  return `porch://group?token=${link.token}#key=${b64urlencode(link.stateKey)}&epoch=${link.epoch}`;
}

/** `a=1&b=2` as a map (as Python's parse_qsl with strict parsing: every pair has an `=`). */
function pairs(text: string, where: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = text.split("&");
  if (parts.length > MAX_PARAMS) bad(`its ${where} is malformed`);
  for (const part of parts) {
    const eq = part.indexOf("=");
    if (eq < 0) bad(`its ${where} is malformed`);
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(part.slice(0, eq).replaceAll("+", " "));
      value = decodeURIComponent(part.slice(eq + 1).replaceAll("+", " "));
    } catch {
      bad(`its ${where} is malformed`);
    }
    if (out.has(name)) bad(`'${name}' appears twice`);
    out.set(name, value);
  }
  return out;
}

/** Every part of a link checked; unknown parameters are ignored (within the bounds). */
export function parseGroupLink(raw: string): GroupLink {
  const text = raw.trim();
  if (text.length > MAX_LINK_LEN) bad(`it is longer than ${MAX_LINK_LEN} characters`);
  if (!/^[\x20-\x7e]*$/.test(text)) bad("it must be printable ASCII");
  const shape = SHAPE.exec(text);
  if (!shape) bad("it must start with porch://group?");
  const [, queryText, fragment] = shape;
  const query = queryText ? pairs(queryText, "query") : new Map<string, string>();
  const token = query.get("token");
  if (token === undefined || !TOKEN.test(token))
    bad("the invite token (token=) is missing or not 43 characters of base64url");
  if (!fragment) bad("the part after # with the group key is missing (was the link cut off?)");
  const params = pairs(fragment, "part after #");
  const key = params.get("key");
  if (key === undefined || !KEY.test(key))
    bad("the group key (key=) is missing or not 43 characters of base64url");
  let stateKey: Uint8Array;
  try {
    stateKey = b64urldecode(key);
  } catch {
    bad(`the group key must encode exactly ${STATE_KEY_LEN} bytes`);
  }
  if (stateKey.length !== STATE_KEY_LEN || b64urlencode(stateKey) !== key)
    bad(`the group key must encode exactly ${STATE_KEY_LEN} bytes`);
  const epoch = params.get("epoch");
  if (epoch === undefined || !EPOCH.test(epoch) || Number(epoch) > MAX_EPOCH)
    bad("the key epoch (epoch=) is missing or not an integer in 0..2**32-1");
  return { token, stateKey, epoch: Number(epoch) };
}
