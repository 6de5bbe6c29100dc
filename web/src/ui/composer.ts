/**
 * The chat's composer: text (Enter sends, Shift+Enter a new line), replying to a message,
 * editing one's own, and attaching files by the button, by drag and drop onto the chat, or
 * by pasting; an upload shows a progress bar, a failure a sentence. Attaching sends at once,
 * with what is typed as the caption.
 */

import { ClientError } from "../core/errors";
import type { StoredMessage } from "../core/types";
import { MAX_ATTACHMENTS } from "../crypto/rich";
import { h } from "./dom";
import { sentence } from "./message_media";

export interface ComposerHandlers {
  send(body: string, reply: StoredMessage | null): Promise<void>;
  /** Prepare, encrypt, upload and send; `progress` goes 0 to 1 over all the files. */
  sendFiles?(
    files: File[],
    caption: string,
    reply: StoredMessage | null,
    progress: (fraction: number) => void,
  ): Promise<void>;
  edit?(m: StoredMessage, body: string): Promise<void>;
  typing(started: boolean): void;
}

export const TYPING_REPEAT_MS = 3_000;

function failure(exc: unknown, fallback: string): string {
  return exc instanceof ClientError ? sentence(exc.message) : fallback;
}

export class Composer {
  readonly el: HTMLElement;
  readonly input: HTMLTextAreaElement;
  readonly #mode: HTMLElement;
  readonly #error: HTMLElement;
  readonly #progress: HTMLProgressElement;
  readonly #progressBox: HTMLElement;
  readonly #picker: HTMLInputElement;
  #reply: StoredMessage | null = null;
  #editing: StoredMessage | null = null;
  #typingSent = 0;
  #busy = false;

  constructor(private readonly handlers: ComposerHandlers) {
    this.input = h("textarea", { id: "composer", rows: 1, maxlength: 16000 });
    this.#mode = h("div", { class: "compose-mode", hidden: true });
    this.#error = h("p", { class: "error compose-error", role: "alert" });
    this.#progress = h("progress", { max: 1, value: 0, "aria-label": "Sending attachment" });
    this.#progressBox = h("div", { class: "upload", hidden: true }, this.#progress);
    this.#picker = h("input", {
      type: "file",
      id: "attach",
      multiple: true,
      class: "visually-hidden",
      onchange: () => {
        const files = [...(this.#picker.files ?? [])];
        this.#picker.value = "";
        void this.attach(files);
      },
    });
    const canAttach = handlers.sendFiles !== undefined;
    const form = h(
      "form",
      { class: "composer", onsubmit: (ev: Event) => (ev.preventDefault(), void this.#submit()) },
      canAttach && this.#picker,
      canAttach &&
        h(
          "label",
          { for: "attach", class: "attach", title: "Attach a file" },
          h("span", { "aria-hidden": "true" }, "+"),
          h("span", { class: "visually-hidden" }, "Attach a file"),
        ),
      h("label", { for: "composer", class: "visually-hidden" }, "Message"),
      this.input,
      h("button", { type: "submit" }, "Send"),
    );
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        void this.#submit();
      } else if (ev.key === "Escape" && (this.#reply || this.#editing)) {
        ev.stopPropagation(); // cancels the mode; the chat stays open
        this.cancel();
      }
    });
    this.input.addEventListener("input", () => {
      const now = Date.now();
      if (this.input.value && now - this.#typingSent > TYPING_REPEAT_MS) {
        this.#typingSent = now;
        handlers.typing(true);
      }
    });
    this.input.addEventListener("paste", (ev) => {
      const files = [...(ev.clipboardData?.files ?? [])];
      if (files.length && canAttach) {
        ev.preventDefault();
        void this.attach(files);
      }
    });
    this.el = h("div", { class: "compose" }, this.#mode, this.#progressBox, this.#error, form);
  }

  focus(): void {
    this.input.focus();
  }

  /** Files dropped anywhere on `target` are attached. */
  acceptDrops(target: HTMLElement): void {
    if (!this.handlers.sendFiles) return;
    target.addEventListener("dragover", (ev) => {
      if (ev.dataTransfer?.types.includes("Files")) {
        ev.preventDefault();
        target.classList.add("dropping");
      }
    });
    target.addEventListener("dragleave", () => target.classList.remove("dropping"));
    target.addEventListener("drop", (ev) => {
      target.classList.remove("dropping");
      const files = [...(ev.dataTransfer?.files ?? [])];
      if (!files.length) return;
      ev.preventDefault();
      void this.attach(files);
    });
  }

  replyTo(m: StoredMessage, author: string, preview: string): void {
    this.#editing = null;
    this.#reply = m;
    this.#showMode(`Replying to ${author}: ${preview}`, "Cancel reply");
  }

  startEdit(m: StoredMessage): void {
    this.#reply = null;
    this.#editing = m;
    this.input.value = m.body;
    this.#showMode("Editing your message", "Cancel edit");
  }

  cancel(): void {
    if (this.#editing) this.input.value = "";
    this.#reply = null;
    this.#editing = null;
    this.#mode.hidden = true;
    this.#mode.replaceChildren();
    this.focus();
  }

  #showMode(text: string, cancel: string): void {
    this.#mode.replaceChildren(
      h("p", { class: "mode-text" }, text),
      h("button", { type: "button", class: "cancel", onclick: () => this.cancel() }, cancel),
    );
    this.#mode.hidden = false;
    this.focus();
  }

  async #submit(): Promise<void> {
    const body = this.input.value;
    if (!body.trim() || this.#busy) return;
    this.#error.textContent = "";
    const editing = this.#editing;
    const reply = this.#reply;
    this.input.value = "";
    this.#typingSent = 0;
    this.handlers.typing(false);
    try {
      if (editing && this.handlers.edit) await this.handlers.edit(editing, body);
      else await this.handlers.send(body, reply);
      if (editing || reply) this.cancel();
    } catch (exc) {
      this.input.value = body;
      this.#error.textContent = failure(exc, "The message could not be sent; try again.");
    }
  }

  async attach(files: File[]): Promise<void> {
    const send = this.handlers.sendFiles;
    if (!send || !files.length || this.#busy) return;
    this.#error.textContent = "";
    if (files.length > MAX_ATTACHMENTS) {
      this.#error.textContent = `At most ${MAX_ATTACHMENTS} files go in one message; choose fewer.`;
      return;
    }
    const caption = this.#editing ? "" : this.input.value;
    const reply = this.#reply;
    this.#busy = true;
    this.#progress.value = 0;
    this.#progressBox.hidden = false;
    try {
      await send(files, caption, reply, (fraction) => (this.#progress.value = fraction));
      if (!this.#editing) this.input.value = "";
      if (reply) this.cancel();
    } catch (exc) {
      this.#error.textContent = failure(exc, "The file could not be sent; try again.");
    } finally {
      this.#busy = false;
      this.#progressBox.hidden = true;
    }
  }
}
