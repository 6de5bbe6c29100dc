/**
 * The "Scan QR code" button and camera view a screen puts beside a pasted-text field (link a
 * new device, join a group by link). This part is in the main bundle and small; the scanner
 * (./qr_scan) and, where there is no BarcodeDetector, its reader (./qr_decode, jsQR) are
 * loaded on the first press (docs/design.md, "Scanning QR codes").
 */

import { h } from "./dom";
import type { QrScan, ScannedCode } from "./qr_scan";
import "./scan_button.css";

export interface ScanOptions {
  /** The field the scanned text goes into (the button says it controls it). */
  field: HTMLInputElement;
  /** Names the camera view for screen readers. */
  videoLabel: string;
  /** What the status says while the camera looks, e.g. "Point the camera at …". */
  looking: string;
  /** What the screen offers without a camera, for the error sentences ("paste … instead"). */
  instead: string;
  /** What goes into the field for a wanted code; null for any other code, which gets the
   * `wrong` sentence while the camera keeps looking. */
  read(code: ScannedCode): string | null;
  wrong: string;
  /** The screen needs the code's exact bytes (a binary payload), not only its text. */
  needBytes?: boolean;
  /** A wanted code was read: it is in the field and the camera is off. */
  found(): void;
  status: HTMLElement;
  error: HTMLElement;
}

/** Whether this page can open a camera at all (a secure context with getUserMedia). */
export function canScan(): boolean {
  return typeof globalThis.navigator?.mediaDevices?.getUserMedia === "function";
}

/** The button and the (hidden until used) camera view, or null where no camera can be opened:
 * the screen then offers pasting only. */
export function scanPart(
  opts: ScanOptions,
): { button: HTMLButtonElement; video: HTMLVideoElement } | null {
  if (!canScan()) return null;
  const { field, status, error } = opts;
  const video = h("video", { class: "scan", muted: true, playsinline: true, hidden: true });
  video.setAttribute("aria-label", opts.videoLabel);
  const button = h(
    "button",
    { type: "button", class: "secondary", "aria-controls": field.id },
    "Scan QR code",
  );
  const ready = () => {
    button.textContent = "Scan QR code";
  };
  let scanner: QrScan | null = null;
  const start = async () => {
    const { QrScan } = await import("./qr_scan");
    scanner ??= new QrScan(
      video,
      {
        code: (code) => {
          const value = opts.read(code);
          if (value === null) {
            // Said once, not five times a second: a screen reader reads every change.
            if (error.textContent !== opts.wrong) error.textContent = opts.wrong;
            return false;
          }
          ready();
          field.value = value;
          opts.found();
          return true;
        },
        ended: (problem) => {
          ready();
          status.textContent = "";
          if (problem) error.textContent = problem;
        },
      },
      opts.instead,
      opts.needBytes,
    );
    await scanner.start();
  };
  button.addEventListener("click", () => {
    if (scanner?.running) {
      scanner.stop();
      ready();
      status.textContent = "The camera is off.";
      return;
    }
    error.textContent = "";
    button.textContent = "Stop camera";
    status.textContent = opts.looking;
    start().catch(() => {
      ready();
      status.textContent = "";
      error.textContent = `The QR reader could not be loaded; check the connection and scan again, or ${opts.instead}.`;
    });
  });
  return { button, video };
}
