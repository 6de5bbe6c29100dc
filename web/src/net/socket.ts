/**
 * The WebSocket as promises (docs/protocol.md section 4): open, the first frame, and the
 * close. Kept apart from the runner so the runner reads as the Python one does.
 */

export const AUTH_TIMEOUT_MS = 15_000;
export const CLOSE_AUTH = 4401; // this device was removed, or its number registered again
export const CLOSE_REPLACED = 4409; // this device connected from somewhere else
export const MAX_FRAME_CHARS = 1 << 20; // the server's frames are far smaller; refuse worse

export class ConnectionClosed extends Error {
  constructor(
    readonly closeCode: number | null,
    reason: string,
  ) {
    super(reason);
    this.name = "ConnectionClosed";
  }
}

export function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch {
      reject(new ConnectionClosed(null, `cannot open a connection to ${url}`));
      return;
    }
    ws.onopen = () => resolve(ws);
    ws.onclose = (ev) => reject(new ConnectionClosed(ev.code, "the server is unreachable"));
  });
}

/** The first frame after `auth`, decoded. */
export function firstFrame(ws: WebSocket): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new ConnectionClosed(null, "the server did not answer the auth frame"));
    }, AUTH_TIMEOUT_MS);
    ws.onmessage = (ev) => {
      clearTimeout(timer);
      const frame = decodeFrame(ev.data);
      if (frame) resolve(frame);
      else reject(new ConnectionClosed(null, "the server's first frame is not a JSON object"));
    };
    ws.onclose = (ev) => {
      clearTimeout(timer);
      reject(new ConnectionClosed(ev.code, ev.reason || "the connection closed"));
    };
  });
}

export function decodeFrame(data: unknown): Record<string, unknown> | null {
  if (typeof data !== "string" || data.length > MAX_FRAME_CHARS) return null;
  try {
    const frame: unknown = JSON.parse(data);
    return typeof frame === "object" && frame !== null && !Array.isArray(frame)
      ? (frame as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** "Full jitter" backoff (AWS architecture blog): spreads reconnects after a restart. */
export function backoff(attempt: number, base = 0.25, cap = 8): number {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 10));
  return base / 2 + Math.random() * (ceiling - base / 2);
}
