/**
 * Several tabs on one profile (issue 9): exactly one holds the connection, so they never
 * kick each other off (the server closes a second connection of a device with 4409). The
 * leader is whoever holds a Web Lock named for the device; the others wait for it, and the
 * next in line takes over when the leader's tab closes (the browser releases its lock).
 * Other tabs write to the shared IndexedDB (texts, read marks go into the outbox) and tell
 * the leader over a BroadcastChannel to look at the outbox; the leader tells them when
 * something changed, so every tab shows the same conversation.
 */

export type TabMessage = { type: "wake" } | { type: "changed" } | { type: "signedout" };

export class Tabs {
  readonly #channel: BroadcastChannel | null;
  #onMessage: (message: TabMessage) => void = () => undefined;

  constructor(readonly name: string) {
    this.#channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(name) : null;
    if (this.#channel) {
      this.#channel.onmessage = (ev: MessageEvent<unknown>) => {
        const data = ev.data as { type?: unknown } | null;
        if (data && (data.type === "wake" || data.type === "changed" || data.type === "signedout"))
          this.#onMessage(data as TabMessage);
      };
    }
  }

  onMessage(handler: (message: TabMessage) => void): void {
    this.#onMessage = handler;
  }

  post(message: TabMessage): void {
    this.#channel?.postMessage(message);
  }

  /**
   * Run `lead` once this tab holds the connection lock, for as long as the tab lives.
   * Without Web Locks (old browsers) the tab leads at once, as a single tab does.
   */
  whenLeader(lead: () => Promise<void>): void {
    const locks = (navigator as Navigator & { locks?: LockManager }).locks;
    if (!locks) {
      void lead();
      return;
    }
    void locks.request(`${this.name}:connection`, async () => {
      await lead();
      await new Promise<never>(() => undefined); // held until the tab closes
    });
  }
}
