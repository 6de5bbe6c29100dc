import { afterEach, describe, expect, it } from "vitest";
import { ServerError, ServerUnreachable } from "../../src/core/errors";
import { HttpApi } from "../../src/net/http";
import {
  DEFAULT_RETRY,
  type RetryNotice,
  type RetryPolicy,
  backoffMs,
  onRetry,
  retryAfterMs,
} from "../../src/net/retry";
import { retryText } from "../../src/ui/retry_notice";

type Answer = Response | "network";

/** A fake fetch that answers from a script, one entry per request, and records them. */
function scripted(answers: Answer[], seen: string[] = []) {
  return async (url: string, init?: RequestInit) => {
    seen.push(`${init?.method ?? "GET"} ${url.replace("http://porch.test", "")}`);
    const next = answers.shift();
    if (next === undefined) throw new Error("more requests than the script has");
    if (next === "network") throw new TypeError("Failed to fetch");
    return next;
  };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers });
const busy = (headers: Record<string, string> = {}) =>
  json(503, { error: { code: "unavailable", message: "the server is busy" } }, headers);

function policy(waits: number[]): RetryPolicy {
  return {
    ...DEFAULT_RETRY,
    random: () => 0,
    sleep: async (ms) => {
      waits.push(ms);
    },
  };
}

afterEach(() => onRetry(null));

describe("HttpApi retries what may pass, and only what is safe to send twice", () => {
  it("retries a GET after a network error and a 503, with a doubling backoff", async () => {
    const seen: string[] = [];
    const waits: number[] = [];
    const notices: (RetryNotice | null)[] = [];
    onRetry((n) => notices.push(n));
    const api = new HttpApi(
      "http://porch.test",
      null,
      scripted(["network", busy(), json(200, { one_time_keys: 9 })], seen),
      policy(waits),
    );
    expect(await api.keyCount()).toBe(9);
    expect(seen).toEqual(Array(3).fill("GET /v1/keys/count"));
    expect(waits).toEqual([500, 1000]);
    expect(notices).toEqual([
      { attempt: 1, attempts: 3, delayMs: 500, reason: "unreachable" },
      { attempt: 2, attempts: 3, delayMs: 1000, reason: "server_error" },
      null, // over: the notice clears
    ]);
    expect(retryText(notices[1]!)).toBe(
      "The server had a problem; retrying in 1 s (attempt 3 of 3)…",
    );
  });

  it("gives up after the last attempt with the final sentence", async () => {
    const waits: number[] = [];
    const api = new HttpApi(
      "http://porch.test",
      null,
      scripted(["network", "network", "network"]),
      policy(waits),
    );
    const error = await api.keyCount().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerUnreachable);
    expect((error as Error).message).toBe(
      "cannot reach the server at http://porch.test; check your connection and try again " +
        "(tried 3 times)",
    );
    expect(waits).toHaveLength(2);
  });

  it("honours Retry-After on a 429, and does not wait for one beyond the cap", async () => {
    const waits: number[] = [];
    const limited = (after: string) =>
      json(
        429,
        { error: { code: "rate_limited", message: "wait", retry_after: 2 } },
        {
          "Retry-After": after,
        },
      );
    const api = new HttpApi(
      "http://porch.test",
      null,
      scripted([limited("2"), json(200, { one_time_keys: 1 }), limited("3600")]),
      policy(waits),
    );
    expect(await api.keyCount()).toBe(1);
    expect(waits).toEqual([2000]);
    const error = await api.keyCount().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "rate_limited", status: 429, message: "wait" });
    expect(waits).toEqual([2000]); // an hour is not waited for: the caller hears it at once
  });

  it("never retries a POST that is not marked, nor a 4xx", async () => {
    const seen: string[] = [];
    const waits: number[] = [];
    const api = new HttpApi(
      "http://porch.test",
      { accountId: "a", deviceId: 1, password: "p" },
      scripted([busy(), json(404, { error: { code: "not_found", message: "gone" } })], seen),
      policy(waits),
    );
    // Claiming takes a one-time key: sent twice, it would take two.
    await expect(api.claimKeys("b7f3c2a0-0000-4000-8000-00000000beef", null)).rejects.toThrow(
      ServerError,
    );
    await expect(api.deleteDevice(5)).rejects.toMatchObject({ code: "not_found" });
    expect(seen).toEqual([
      "POST /v1/keys/b7f3c2a0-0000-4000-8000-00000000beef/claim",
      "DELETE /v1/devices/5",
    ]);
    expect(waits).toEqual([]);
  });

  it("retries a marked POST (a lookup only reads)", async () => {
    const seen: string[] = [];
    const api = new HttpApi(
      "http://porch.test",
      null,
      scripted([busy(), json(200, { account_id: "x" })], seen),
      policy([]),
    );
    expect(await api.lookup({ username: "bob" })).toBe("x");
    expect(seen).toEqual(["POST /v1/directory/lookup", "POST /v1/directory/lookup"]);
  });
});

describe("Retry-After and the backoff", () => {
  it("reads delta-seconds and HTTP dates, and nothing else", () => {
    const now = Date.parse("2026-12-01T20:00:00Z");
    expect(retryAfterMs("120", now)).toBe(120_000);
    expect(retryAfterMs("Tue, 01 Dec 2026 20:00:30 GMT", now)).toBe(30_000);
    expect(retryAfterMs("Tue, 01 Dec 2026 19:00:00 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeNull();
    expect(retryAfterMs(null, now)).toBeNull();
  });

  it("doubles, adds at most half again as jitter, and stays under the cap", () => {
    const p = { ...DEFAULT_RETRY, random: () => 0.999 };
    expect(backoffMs({ ...p, random: () => 0 }, 1)).toBe(500);
    expect(backoffMs(p, 2)).toBeLessThanOrEqual(1500);
    expect(backoffMs(p, 2)).toBeGreaterThan(1000);
    expect(backoffMs(p, 10)).toBe(10_000);
  });
});
