/**
 * The contact info screen, opened from the chat header (mirrors `porch verify` and `porch
 * block`): who the contact is, the safety number in 12 groups of five with its QR code
 * (docs/protocol.md, "Safety numbers"), marking it verified or accepting a changed one
 * (docs/design.md, "Verified contacts"), and blocking. Escape or "← Chat" goes back.
 */

import { type ContactIdentity, digitLines, parseScanned } from "../core/identity";
import { hexencode } from "../protocol/codec";
import { decodePayload, SafetyNumberError } from "../crypto/safety";
import { h } from "./dom";
import { panel, problem } from "./panel";
import { scanPart } from "./scan_button";

export interface ContactHandlers {
  back(): void;
  /** The contact's keys fetched and checked, then the number over them. */
  identity(): Promise<ContactIdentity>;
  markVerified(masterKey: string): Promise<void>;
  acceptIdentity(): Promise<void>;
  isBlocked(): Promise<boolean>;
  setBlocked(blocked: boolean): Promise<void>;
}

const STATE_TEXT = {
  unverified: "Not verified.",
  verified: "✓ Verified: you compared this safety number.",
  verified_key_changed: "",
} as const;

/** Whether scanned bytes are a safety number payload (of any version: a payload of another
 * version is for compare() to name, not a code to pass over). */
function isPayload(bytes: Uint8Array): boolean {
  try {
    decodePayload(bytes);
    return true;
  } catch {
    return false;
  }
}

export class ContactView {
  readonly el: HTMLElement;
  readonly #safety: HTMLElement;
  readonly #block: HTMLElement;
  readonly #back: HTMLButtonElement;

  constructor(
    readonly peer: string,
    private readonly label: string,
    private readonly handlers: ContactHandlers,
  ) {
    this.#safety = h("section", { class: "panel-part", "aria-labelledby": "safety-title" });
    this.#block = h("section", { class: "panel-part", "aria-labelledby": "block-title" });
    const shown = panel(
      "contact",
      label,
      "← Chat",
      () => handlers.back(),
      h("dl", { class: "facts" }, h("dt", {}, "Account id"), h("dd", {}, h("code", {}, peer))),
      this.#safety,
      this.#block,
    );
    this.el = shown.el;
    this.#back = shown.back;
  }

  focus(): void {
    this.#back.focus();
  }

  async load(): Promise<void> {
    await Promise.all([this.#renderSafety(), this.#renderBlock()]);
  }

  async #renderSafety(note = ""): Promise<void> {
    const title = h("h2", { id: "safety-title" }, "Safety number");
    const error = h("p", { class: "error", role: "alert" });
    let ident: ContactIdentity;
    let renderQrBytes: (bytes: Uint8Array, label: string) => SVGElement;
    try {
      ident = await this.handlers.identity();
      // The encoder comes with the first contact screen, not with the app's first paint.
      ({ renderQrBytes } = await import("./qr"));
    } catch (exc) {
      error.textContent = problem(exc, "The safety number could not be worked out; try again.");
      this.#safety.replaceChildren(title, error);
      return;
    }
    const number = ident.safetyNumber;

    const digits = h(
      "p",
      { class: "digits", "aria-label": `Safety number: ${number.groups().join(", ")}` },
      ...digitLines(number).map((line) => h("span", { class: "digit-line" }, line.join(" "))),
    );
    const qr = h(
      "figure",
      { class: "qr" },
      renderQrBytes(number.qrPayload(), `QR code of the safety number with ${this.label}`),
      h("figcaption", {}, "Scan to compare, or compare the digits."),
    );
    const state =
      ident.verification === "verified_key_changed"
        ? h(
            "p",
            { class: "warning", role: "alert" },
            `${this.label}'s safety number changed since you verified it. Compare the new one ` +
              "before you trust it: someone may be intercepting your messages, or they " +
              "registered again.",
          )
        : h(
            "p",
            { class: `verification ${ident.verification}`, role: "status" },
            note || STATE_TEXT[ident.verification],
          );
    const actions = h("div", { class: "actions" });
    const act = (text: string, run: () => Promise<void>, done: string) =>
      h(
        "button",
        {
          type: "button",
          onclick: (ev: Event) => {
            const button = ev.currentTarget as HTMLButtonElement;
            button.disabled = true;
            error.textContent = "";
            run()
              .then(() => this.#renderSafety(done))
              .then(() => this.#safety.querySelector<HTMLElement>("h2")?.focus())
              .catch((exc: unknown) => {
                button.disabled = false;
                error.textContent = problem(exc, "That did not work; try again.");
              });
          },
        },
        text,
      );
    if (ident.verification !== "verified") {
      actions.append(
        act(
          "Mark verified",
          () => this.handlers.markVerified(ident.masterKey),
          `Marked ${this.label} verified.`,
        ),
      );
    }
    if (ident.verification === "verified_key_changed") {
      actions.append(
        act(
          "Accept without verifying",
          () => this.handlers.acceptIdentity(),
          `Accepted the new safety number with ${this.label}; not verified.`,
        ),
      );
    }
    const scanned = h("input", {
      id: "scan-code",
      autocomplete: "off",
      spellcheck: "false",
      maxlength: 2048,
    });
    const status = h("p", { class: "notice", role: "status" });
    const runCompare = () => {
      error.textContent = "";
      void this.#compare(ident, scanned.value, error);
    };
    // Their QR code holds the 74 payload bytes, not text: jsQR reads it (BarcodeDetector
    // gives text only), and its bytes go into the field as the hex the field takes.
    const scan = scanPart({
      field: scanned,
      videoLabel: `Camera view for scanning ${this.label}'s safety number code`,
      looking: `Point the camera at the QR code on ${this.label}'s contact screen.`,
      instead: "type their code or compare the digits instead",
      read: ({ bytes }) => (bytes && isPayload(bytes) ? hexencode(bytes) : null),
      wrong: `That QR code is not a safety number code; point the camera at the QR code on ${this.label}'s contact screen.`,
      needBytes: true,
      found: () => {
        status.textContent = "";
        runCompare();
      },
      status,
      error,
    });
    const compare = h(
      "form",
      {
        class: "compare",
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          runCompare();
        },
      },
      h("label", { for: "scan-code" }, "Their code (hex, from porch verify --json)"),
      h("div", { class: "row" }, scanned, h("button", { type: "submit" }, "Compare"), scan?.button),
      scan?.video,
      status,
    );
    this.#safety.replaceChildren(
      title,
      h(
        "p",
        { class: "hint" },
        `Compare these digits with the ones ${this.label} sees, in person or on a call you trust.`,
      ),
      digits,
      qr,
      h(
        "p",
        { class: "hint" },
        "Your code: ",
        h("code", { class: "hex" }, hexencode(number.qrPayload())),
      ),
      state,
      actions,
      compare,
      error,
    );
    this.#safety.querySelector("h2")!.setAttribute("tabindex", "-1");
  }

  async #compare(ident: ContactIdentity, text: string, error: HTMLElement): Promise<void> {
    let result;
    try {
      result = ident.safetyNumber.compare(parseScanned(text));
    } catch (exc) {
      error.textContent =
        exc instanceof SafetyNumberError
          ? `That is not a safety number code: ${exc.message}.`
          : problem(exc, "That code could not be read.");
      return;
    }
    if (result === "different_version") {
      error.textContent = `${this.label}'s code was made by another version of the safety number; compare the digits instead.`;
      return;
    }
    if (result === "mismatch") {
      error.textContent =
        `The code does not match the safety number with ${this.label}. Someone may be ` +
        "intercepting your messages, or one of you has an old number: do not mark it verified.";
      return;
    }
    try {
      await this.handlers.markVerified(ident.masterKey);
      await this.#renderSafety(`The codes match: marked ${this.label} verified.`);
    } catch (exc) {
      error.textContent = problem(exc, "That did not work; try again.");
    }
  }

  async #renderBlock(): Promise<void> {
    const title = h("h2", { id: "block-title" }, "Block");
    const error = h("p", { class: "error", role: "alert" });
    let blocked: boolean;
    try {
      blocked = await this.handlers.isBlocked();
    } catch (exc) {
      error.textContent = problem(exc, "Whether this contact is blocked could not be read.");
      this.#block.replaceChildren(title, error);
      return;
    }
    const button = h(
      "button",
      {
        type: "button",
        class: blocked ? "" : "danger",
        onclick: () => {
          button.disabled = true;
          error.textContent = "";
          this.handlers
            .setBlocked(!blocked)
            .then(() => this.#renderBlock())
            .then(() => this.#block.querySelector<HTMLButtonElement>("button")?.focus())
            .catch((exc: unknown) => {
              button.disabled = false;
              error.textContent = problem(exc, "That did not work; try again.");
            });
        },
      },
      blocked ? `Unblock ${this.label}` : `Block ${this.label}`,
    );
    this.#block.replaceChildren(
      title,
      h(
        "p",
        { class: "hint", role: "status" },
        blocked
          ? `${this.label} is blocked: the server drops what they send you.`
          : `Blocking tells the server to drop what ${this.label} sends you; they are not told.`,
      ),
      button,
      error,
    );
  }
}
