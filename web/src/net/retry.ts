/**
 * When an HTTP request is tried again (net/http.ts): a network error, a 5xx the server may
 * recover from, or 429 with its Retry-After (docs/protocol.md, `rate_limited`). Only requests
 * that are safe to send twice: GET, PUT and DELETE (idempotent in HTTP, and so on every
 * Porch route: a PUT stores the same thing again, a DELETE of a gone thing is a 404), and a
 * POST the caller marks (one that reads, or that the server dedups). Attempts are bounded
 * and spaced by an exponential backoff with jitter; a Retry-After longer than the cap is not
 * waited for: the caller hears the server's sentence at once.
 */

export interface RetryNotice {
  attempt: number; // the attempt that failed, 1-based
  attempts: number; // of at most this many
  delayMs: number; // before the next one
  reason: "unreachable" | "server_error" | "rate_limited";
}

export interface RetryPolicy {
  attempts: number; // in all, the first included (1: never retried)
  baseDelayMs: number; // the first backoff; doubled each time
  maxDelayMs: number; // cap of a backoff and of a Retry-After that is waited for
  sleep(ms: number): Promise<void>;
  random(): number; // jitter in [0, 1)
}

export const RETRY_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504]);
const IDEMPOTENT: ReadonlySet<string> = new Set(["GET", "HEAD", "PUT", "DELETE"]);

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 3,
  baseDelayMs: 500,
  maxDelayMs: 10_000,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
};

export function retryable(method: string, marked: boolean): boolean {
  return marked || IDEMPOTENT.has(method.toUpperCase());
}

/** The wait before attempt `attempt + 1`: full backoff plus up to 50 % jitter, capped. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const base = policy.baseDelayMs * 2 ** (attempt - 1);
  return Math.min(policy.maxDelayMs, Math.round(base * (1 + policy.random() / 2)));
}

/** Retry-After in ms (delta-seconds or an HTTP date; RFC 9110 10.2.3), or null if absent or
 * unreadable. A date in the past is 0. */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | null {
  if (header === null) return null;
  const text = header.trim();
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}

// Who hears of retries: the UI's notice (ui/retry_notice.ts); one listener, set once.
let listener: ((notice: RetryNotice | null) => void) | null = null;

export function onRetry(fn: ((notice: RetryNotice | null) => void) | null): void {
  listener = fn;
}

/** A retry is coming (notice), or the request that was retried is over (null). */
export function tell(notice: RetryNotice | null): void {
  listener?.(notice);
}
