/**
 * How the app names accounts (split out of ./app): one's own account is "Note to self", a
 * contact by its stored label, an unknown one by the username or number the server gives for
 * it (asked once, a bounded few at a time), else by its short id.
 */

import type { OpenProfile } from "../net/profile";
import type { IdbStore } from "../store/idb";
import { NOTE_TO_SELF } from "./conversation_list";

export class Labels {
  readonly #labels = new Map<string, string>();
  readonly #asked = new Set<string>(); // group members whose label was asked for once

  constructor(
    private readonly store: IdbStore,
    private readonly profile: OpenProfile,
  ) {}

  /** The cached real label, if one was remembered. */
  cached(account: string): string | undefined {
    return this.#labels.get(account);
  }

  has(account: string): boolean {
    return this.#labels.has(account);
  }

  async label(peer: string): Promise<string> {
    if (peer === this.profile.config.accountId) return NOTE_TO_SELF;
    return this.#labels.get(peer) ?? (await this.store.contact(peer))?.label ?? peer.slice(0, 8);
  }

  /** An unknown sender is shown by the username or number the server gives for it. */
  async learn(peer: string): Promise<void> {
    const known = (await this.store.contact(peer))?.label;
    if (known && known !== peer.slice(0, 8)) return;
    try {
      const body = await this.profile.api.call(
        "GET",
        `/v1/accounts/${encodeURIComponent(peer)}/profile`,
      );
      const label = body?.username ? `@${body.username}` : body?.phone;
      if (typeof label === "string") await this.store.setLabel(peer, label);
    } catch {
      /* shown by its short id */
    }
  }

  /** Cache a contact's label once it is a real one (a short id may be learned later). */
  async remember(account: string): Promise<void> {
    const label = (await this.store.contact(account))?.label;
    if (label && label !== account.slice(0, 8)) this.#labels.set(account, label);
  }

  async learnAll(accounts: string[]): Promise<void> {
    for (const a of accounts.slice(0, 50)) {
      if (!this.#asked.has(a) && (await this.label(a)) === a.slice(0, 8)) {
        this.#asked.add(a);
        await this.learn(a);
      }
      await this.remember(a);
    }
  }
}
