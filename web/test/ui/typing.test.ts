import { afterEach, describe, expect, it, vi } from "vitest";
import { TYPING_SHOWN_MS, TypingLine } from "../../src/ui/typing";

describe("the typing line", () => {
  afterEach(() => vi.useRealTimers());

  it("shows each typer until stopped, a message, or TYPING_SHOWN_MS without news", () => {
    vi.useFakeTimers();
    const el = { textContent: "" } as HTMLElement;
    const line = new TypingLine(el);
    line.set("a", true, "Alice");
    vi.advanceTimersByTime(1000);
    line.set("b", true, "Bob");
    expect(el.textContent).toBe("Alice and Bob are typing…");
    line.set("a", false, "");
    expect(el.textContent).toBe("Bob is typing…");
    vi.advanceTimersByTime(TYPING_SHOWN_MS - 1);
    expect(el.textContent).toBe("Bob is typing…");
    vi.advanceTimersByTime(1);
    expect(el.textContent).toBe("");
    line.set("a", true, "Alice");
    line.set("", false, "");
    expect(el.textContent).toBe("");
  });
});
