/**
 * The HTTP API (mirrors src/porch/client/api.py; docs/protocol.md section 3). Device
 * credentials go as HTTP Basic ("Authentication"): "<account_id>.<device_id>:<password>".
 * Errors come back as ServerError with the server's stable code and message.
 */

import { ClientError, ServerError, ServerUnreachable } from "../core/errors";
import type { Bundle, DirectoryDevice } from "../core/types";
import type { OneTimeKey } from "../crypto/olm";
import {
  DEFAULT_RETRY,
  RETRY_STATUSES,
  type RetryPolicy,
  backoffMs,
  retryAfterMs,
  retryable,
  tell,
} from "./retry";

export interface Credentials {
  accountId: string;
  deviceId: number;
  password: string;
}

export interface RegisteredDevice extends Credentials {
  registrationId: number;
  replaced: boolean;
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

const TIMEOUT_MS = 20_000;
type Failure = ServerError | ServerUnreachable;

function otkJson(k: OneTimeKey) {
  return { key_id: k.keyId, curve25519: k.curve25519, signature: k.signature };
}

export class HttpApi {
  constructor(
    readonly baseUrl: string,
    private readonly creds: Credentials | null = null,
    private readonly fetcher: FetchLike = (i, init) => globalThis.fetch(i, init),
    private readonly policy: RetryPolicy = DEFAULT_RETRY,
  ) {}

  withCredentials(creds: Credentials): HttpApi {
    return new HttpApi(this.baseUrl, creds, this.fetcher, this.policy);
  }

  /**
   * One request, tried again on a network error, a 5xx or a 429 when it is safe to send twice
   * (./retry: GET, PUT, DELETE, or `retry` for a POST that reads or that the server dedups).
   */
  async call(method: string, path: string, json?: unknown, retry = false): Promise<any> {
    const policy = this.policy;
    const attempts = retryable(method, retry) ? Math.max(1, policy.attempts) : 1;
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= attempts;
      const outcome = await this.#once(method, path, json);
      if (outcome.ok) {
        if (attempt > 1) tell(null);
        return outcome.body;
      }
      const { error, retryAfter } = outcome;
      const status = error instanceof ServerError ? error.status : 0;
      const reason =
        error instanceof ServerUnreachable
          ? "unreachable"
          : status === 429
            ? "rate_limited"
            : RETRY_STATUSES.has(status)
              ? "server_error"
              : null;
      // A Retry-After beyond the cap is not waited for: the server's sentence says how long.
      const delayMs = reason === "rate_limited" ? retryAfter : backoffMs(policy, attempt);
      if (reason === null || last || delayMs === null || delayMs > policy.maxDelayMs) {
        if (attempt > 1) tell(null);
        throw attempt > 1 ? afterAttempts(error, attempt) : error;
      }
      tell({ attempt, attempts, delayMs, reason });
      await policy.sleep(delayMs);
    }
  }

  async #once(
    method: string,
    path: string,
    json: unknown,
  ): Promise<{ ok: true; body: any } | { ok: false; error: Failure; retryAfter: number | null }> {
    const headers: Record<string, string> = {};
    if (json !== undefined) headers["Content-Type"] = "application/json";
    if (this.creds) {
      const user = `${this.creds.accountId}.${this.creds.deviceId}`;
      headers.Authorization = `Basic ${btoa(`${user}:${this.creds.password}`)}`;
    }
    let response: Response;
    try {
      const init: RequestInit = { method, headers, signal: AbortSignal.timeout(TIMEOUT_MS) };
      if (json !== undefined) init.body = JSON.stringify(json);
      response = await this.fetcher(`${this.baseUrl}${path}`, init);
    } catch {
      const error = new ServerUnreachable(
        `cannot reach the server at ${this.baseUrl}; check your connection and try again`,
      );
      return { ok: false, error, retryAfter: null };
    }
    if (response.status === 204) return { ok: true, body: null };
    let body: any = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (response.ok) return { ok: true, body };
    const retryAfter = retryAfterMs(response.headers.get("Retry-After"));
    const err = body && typeof body === "object" ? body.error : null;
    if (err && typeof err === "object") {
      const { code, message, ...details } = err;
      const error = new ServerError(String(code), String(message), response.status, details);
      return { ok: false, error, retryAfter };
    }
    const error = new ServerError(
      "http_error",
      `the server answered HTTP ${response.status} without a Porch error; check that the address is a Porch server`,
      response.status,
    );
    return { ok: false, error, retryAfter };
  }

  // Registration
  async requestCode(
    phone: string,
    sessionId?: string,
  ): Promise<{ sessionId: string; attemptsLeft: number }> {
    const body = await this.call(
      "POST",
      "/v1/registration/code",
      sessionId ? { phone, session_id: sessionId } : { phone },
    );
    return { sessionId: String(body.session_id), attemptsLeft: Number(body.attempts_left) };
  }

  async verify(sessionId: string, code: string, name: string): Promise<RegisteredDevice> {
    const b = await this.call("POST", "/v1/registration/verify", {
      session_id: sessionId,
      code,
      name,
    });
    return {
      accountId: String(b.account_id),
      deviceId: Number(b.device_id),
      registrationId: Number(b.registration_id),
      password: String(b.password),
      replaced: Boolean(b.replaced),
    };
  }

  // Keys
  async uploadKeys(opts: {
    identity?: Record<string, string>;
    oneTimeKeys?: OneTimeKey[];
    fallbackKey?: OneTimeKey;
  }): Promise<number> {
    const body: Record<string, unknown> = { one_time_keys: (opts.oneTimeKeys ?? []).map(otkJson) };
    if (opts.identity) body.identity = opts.identity;
    if (opts.fallbackKey) body.fallback_key = otkJson(opts.fallbackKey);
    return Number((await this.call("PUT", "/v1/keys", body)).one_time_keys);
  }

  async keyCount(): Promise<number> {
    return Number((await this.call("GET", "/v1/keys/count")).one_time_keys);
  }

  async getKeys(accountId: string): Promise<Bundle> {
    return parseBundle(await this.call("GET", `/v1/keys/${encodeURIComponent(accountId)}`));
  }

  async claimKeys(accountId: string, devices: readonly number[] | null): Promise<Bundle> {
    return parseBundle(
      await this.call("POST", `/v1/keys/${encodeURIComponent(accountId)}/claim`, { devices }),
    );
  }

  async putDeviceList(list: string, signature: string): Promise<void> {
    await this.call("PUT", "/v1/devices/list", { list, signature });
  }

  // Account and directory
  async setUsername(username: string): Promise<string | null> {
    return (await this.call("PUT", "/v1/accounts/me/username", { username })).username ?? null;
  }

  async lookup(query: { phone?: string; username?: string }): Promise<string> {
    // A lookup only reads: safe to send again.
    return String((await this.call("POST", "/v1/directory/lookup", query, true)).account_id);
  }

  // Linked devices (docs/protocol.md section 3, "Devices" and "Linked devices")
  async devices(): Promise<AccountDevice[]> {
    return parseDevices(await this.call("GET", "/v1/devices"));
  }

  async deleteDevice(deviceId: number): Promise<void> {
    await this.call("DELETE", `/v1/devices/${deviceId}`);
  }

  /** This device removes itself ("sign out"), with the account's next list without it. */
  async leave(list: string, signature: string): Promise<void> {
    await this.call("POST", "/v1/devices/leave", { list, signature });
  }

  /** Open a provisioning channel (10 minutes); its id. */
  async openChannel(): Promise<string> {
    const id = (await this.call("POST", "/v1/provisioning", undefined, true))?.id; // unused ones expire
    if (typeof id !== "string")
      throw new ClientError("the server's provisioning answer has no channel id", "bad_answer");
    return id;
  }

  /** The channel's message (base64), or null if none came within `wait` seconds (0..30). */
  async waitChannel(channelId: string, wait: number): Promise<string | null> {
    const seconds = Math.max(0, Math.min(30, Math.floor(wait)));
    const path = `/v1/provisioning/${encodeURIComponent(channelId)}?wait=${seconds}`;
    const body = await this.call("GET", path);
    if (body === null) return null;
    if (typeof body.body !== "string")
      throw new ClientError("the provisioning channel's answer has no body", "bad_answer");
    return body.body;
  }

  /** Put the primary's encrypted ProvisionMessage (base64) into a new device's channel. */
  async fillChannel(channelId: string, body: string): Promise<void> {
    await this.call("PUT", `/v1/provisioning/${encodeURIComponent(channelId)}`, { body });
  }

  /** A one-time code that lets a new device join this account (the primary's side). */
  async provisioningCode(): Promise<string> {
    const code = (await this.call("POST", "/v1/devices/provisioning_code"))?.code;
    if (typeof code !== "string")
      throw new ClientError("the server's provisioning answer has no code", "bad_answer");
    return code;
  }

  /** Use up a provisioning code: this browser becomes the account's next device. */
  async link(code: string, name: string): Promise<RegisteredDevice> {
    const b = await this.call("POST", "/v1/devices/link", { code, name });
    return {
      accountId: String(b.account_id),
      deviceId: Number(b.device_id),
      registrationId: Number(b.registration_id),
      password: String(b.password),
      replaced: false,
    };
  }
}

/** The last error of a retried request, saying that it was tried `attempts` times. */
function afterAttempts(error: Failure, attempts: number): Failure {
  const said = `${error.message} (tried ${attempts} times)`;
  if (error instanceof ServerUnreachable) return new ServerUnreachable(said);
  return new ServerError(error.code, said, error.status, error.details);
}

/** One of the account's devices, as `GET /v1/devices` lists it. */
export interface AccountDevice {
  deviceId: number;
  name: string;
  created: number; // ms
  hasKeys: boolean;
}

/** The device list from untrusted JSON: at most 64 (the server's maximum is lower). */
export function parseDevices(body: unknown): AccountDevice[] {
  if (!Array.isArray(body) || body.length > 64)
    throw new ClientError("the server's device list could not be read", "bad_answer");
  return body.map((d: any) => {
    if (!Number.isSafeInteger(d?.device_id) || d.device_id < 1)
      throw new ClientError("the server's device list has a bad device id", "bad_answer");
    return {
      deviceId: d.device_id as number,
      name: typeof d.name === "string" ? d.name : "",
      created: Number.isSafeInteger(d.created) ? (d.created as number) : 0,
      hasKeys: d.has_keys === true,
    };
  });
}

/** A bundle from untrusted JSON: every field checked for its type (the signatures later). */
export function parseBundle(body: any): Bundle {
  const str = (v: unknown, what: string): string => {
    if (typeof v !== "string")
      throw new ClientError(`the key directory's answer has no valid ${what}`, "bad_answer");
    return v;
  };
  const int = (v: unknown, what: string): number => {
    if (!Number.isSafeInteger(v))
      throw new ClientError(`the key directory's answer has no valid ${what}`, "bad_answer");
    return v as number;
  };
  if (
    !body ||
    typeof body !== "object" ||
    !Array.isArray(body.devices) ||
    body.devices.length > 64
  ) {
    throw new ClientError("the key directory's answer is not a key bundle", "bad_answer");
  }
  const devices: DirectoryDevice[] = body.devices.map((d: any) => {
    const k = d?.one_time_key;
    return {
      deviceId: int(d?.device_id, "device id"),
      registrationId: int(d?.registration_id, "registration id"),
      curve25519: str(d?.curve25519, "curve25519 key"),
      ed25519: str(d?.ed25519, "ed25519 key"),
      signature: str(d?.signature, "signature"),
      oneTimeKey: k
        ? {
            keyId: str(k.key_id, "key id"),
            curve25519: str(k.curve25519, "one-time key"),
            signature: str(k.signature, "one-time key signature"),
            fallback: k.fallback === true,
          }
        : null,
    };
  });
  const listed = body.device_list;
  return {
    accountId: str(body.account_id, "account id"),
    masterKey: str(body.master_key, "master key"),
    devices,
    deviceList: listed
      ? {
          list: str(listed.list, "device list"),
          signature: str(listed.signature, "device list signature"),
        }
      : null,
  };
}
