// What the service worker tells the app's tabs when a push arrives (src/sw/sw.ts): "an
// envelope waits; connect now if you are not connected". It carries nothing else.

export const WAKE_MESSAGE = { type: "porch:wake" } as const;

export function isWakeMessage(data: unknown): boolean {
  return (
    typeof data === "object" && data !== null && (data as { type?: unknown }).type === "porch:wake"
  );
}
