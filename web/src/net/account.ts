/**
 * This account's settings on the server (docs/protocol.md section 3, "Account" and "Blocks";
 * mirrors the SDK's HttpApi.me, set_username, set_discoverable, blocks, set_block). Every
 * answer is untrusted JSON: checked for its shape and bounded before the UI sees it.
 */

import { ClientError } from "../core/errors";
import { USERNAME_RE } from "./profile";

/** The part of net/http.ts HttpApi used here (a call with the device's credentials). */
export interface AccountApi {
  call(method: string, path: string, json?: unknown): Promise<any>;
}

export interface AccountInfo {
  accountId: string;
  deviceId: number;
  phone: string;
  username: string | null;
  discoverable: boolean;
}

export const ACCOUNT_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const MAX_BLOCKED = 10_000; // far above any real list; a bigger answer is refused
export const MAX_USERNAME_INPUT = 40; // what the server reads before normalising

function badAnswer(what: string): ClientError {
  return new ClientError(`the server's answer has no valid ${what}; try again`, "bad_answer");
}

export function parseAccount(body: any): AccountInfo {
  if (!body || typeof body !== "object") throw badAnswer("account");
  const { account_id, device_id, phone, username, discoverable } = body;
  if (typeof account_id !== "string" || !ACCOUNT_ID_RE.test(account_id))
    throw badAnswer("account id");
  if (!Number.isSafeInteger(device_id) || device_id < 1 || device_id > 2 ** 31 - 1)
    throw badAnswer("device id");
  if (typeof phone !== "string" || phone.length > 32) throw badAnswer("phone number");
  if (username !== null && (typeof username !== "string" || !USERNAME_RE.test(username)))
    throw badAnswer("username");
  if (typeof discoverable !== "boolean") throw badAnswer("discoverability");
  return { accountId: account_id, deviceId: device_id, phone, username, discoverable };
}

/** "@Alice" -> "alice", "" -> null (release); ClientError with code usage when invalid. */
export function normalizeUsername(raw: string): string | null {
  const name = raw.trim().replace(/^@/, "").toLowerCase();
  if (!name) return null;
  if (name.length > MAX_USERNAME_INPUT || !USERNAME_RE.test(name)) {
    throw new ClientError(
      "usernames are 3-32 characters: a letter, then letters, digits or _; choose another",
      "usage",
    );
  }
  return name;
}

export async function accountInfo(api: AccountApi): Promise<AccountInfo> {
  return parseAccount(await api.call("GET", "/v1/accounts/me"));
}

/** Claim `username` (null releases it); the normalised name the server kept, or null. */
export async function setUsername(
  api: AccountApi,
  username: string | null,
): Promise<string | null> {
  const body = await api.call("PUT", "/v1/accounts/me/username", { username });
  const kept = body?.username ?? null;
  if (kept !== null && (typeof kept !== "string" || !USERNAME_RE.test(kept)))
    throw badAnswer("username");
  return kept;
}

export async function setDiscoverable(api: AccountApi, discoverable: boolean): Promise<void> {
  await api.call("PUT", "/v1/accounts/me/discoverable", { discoverable });
}

export async function blockedAccounts(api: AccountApi): Promise<string[]> {
  const body = await api.call("GET", "/v1/blocks");
  const list: unknown = body?.blocked;
  if (!Array.isArray(list) || list.length > MAX_BLOCKED)
    throw badAnswer("list of blocked accounts");
  if (!list.every((id): id is string => typeof id === "string" && ACCOUNT_ID_RE.test(id)))
    throw badAnswer("blocked account id");
  return list;
}

/** Block (the server then drops every message from it, docs/protocol.md "Blocks") or unblock. */
export async function setBlocked(
  api: AccountApi,
  accountId: string,
  blocked: boolean,
): Promise<void> {
  if (!ACCOUNT_ID_RE.test(accountId)) throw new ClientError("that is not an account id", "usage");
  await api.call(blocked ? "PUT" : "DELETE", `/v1/blocks/${accountId}`);
}
