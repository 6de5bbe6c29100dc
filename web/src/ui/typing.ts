/**
 * The chat's typing line: who is typing now. A 1:1 chat has one typer; a group chat may have
 * several ("Alice is typing…", "Alice and Bob are typing…", "Alice, Bob and 2 others are
 * typing…"). Each typer's "started" holds for TYPING_SHOWN_MS: a lost "stopped" must not
 * leave anyone typing for ever.
 */

export const TYPING_SHOWN_MS = 6_000;
export const NAMED_TYPERS = 2; // beyond this, "and N others"

/** The sentence for these typers (in the order they started); "" for none. */
export function typingText(labels: readonly string[]): string {
  if (!labels.length) return "";
  if (labels.length === 1) return `${labels[0]} is typing…`;
  if (labels.length === 2) return `${labels[0]} and ${labels[1]} are typing…`;
  const rest = labels.length - NAMED_TYPERS;
  return `${labels.slice(0, NAMED_TYPERS).join(", ")} and ${rest} other${rest === 1 ? "" : "s"} are typing…`;
}

export class TypingLine {
  readonly #typers = new Map<string, { label: string; timer: ReturnType<typeof setTimeout> }>();

  constructor(private readonly el: HTMLElement) {}

  /** `sender` started or stopped typing; "" (no sender) clears everyone. */
  set(sender: string, started: boolean, label: string): void {
    if (!sender) {
      for (const t of this.#typers.values()) clearTimeout(t.timer);
      this.#typers.clear();
      return this.#show();
    }
    const had = this.#typers.get(sender);
    if (had) clearTimeout(had.timer);
    this.#typers.delete(sender);
    if (started) {
      const timer = setTimeout(() => {
        this.#typers.delete(sender);
        this.#show();
      }, TYPING_SHOWN_MS);
      this.#typers.set(sender, { label, timer });
    }
    this.#show();
  }

  #show(): void {
    this.el.textContent = typingText([...this.#typers.values()].map((t) => t.label));
  }
}
