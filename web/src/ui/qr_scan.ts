/**
 * Scanning a QR code with the camera, for every screen that reads one (link a new device,
 * join a group by link): getUserMedia into a <video>, a frame read five times a second, the
 * camera's track stopped when the code is found, on Stop, when the screen is left or the page
 * hidden (docs/design.md, "Scanning QR codes"; docs/security.md, "The camera"). The frames are
 * read by the browser's BarcodeDetector where there is one (Chromium on Android, macOS,
 * ChromeOS); elsewhere by jsQR from ./qr_decode. ui/scan_button.ts loads this module on the
 * first press, and this one loads ./qr_decode only where it is needed: chunks of their own, so
 * the main bundle carries neither.
 */

/** What a scan read: the text, and the exact bytes where the reader gives them (jsQR does,
 * BarcodeDetector gives only text). */
export interface ScannedCode {
  text: string;
  bytes: Uint8Array | null;
}

export interface ScanHandlers {
  /** Each code read, until one returns true: the one wanted, and the camera stops. */
  code(found: ScannedCode): boolean;
  /** The scan ended without a wanted code: why, as a sentence ("" when the screen was left). */
  ended(problem: string): void;
}

type FrameReader = (video: HTMLVideoElement) => ScannedCode[] | Promise<ScannedCode[]>;

interface Detector {
  detect(source: HTMLVideoElement): Promise<{ rawValue: string }[]>;
}
interface DetectorClass {
  new (opts: { formats: string[] }): Detector;
  getSupportedFormats?(): Promise<string[]>;
}

export const SCAN_EVERY_MS = 200; // five frames a second: quick to find, light on the CPU

/** The sentence for a getUserMedia refusal; `instead` is what the screen offers without one
 * (e.g. "paste the link address instead"). */
export function cameraProblem(exc: unknown, instead: string): string {
  const name = exc instanceof Error || exc instanceof DOMException ? exc.name : "";
  switch (name) {
    case "NotAllowedError":
    case "SecurityError":
      return `The camera was not allowed; allow it for this site in the browser's settings and scan again, or ${instead}.`;
    case "NotFoundError":
    case "OverconstrainedError":
      return `No camera was found; ${instead}.`;
    case "NotReadableError":
    case "AbortError":
      return `The camera could not be started (another app may be using it); close that app and scan again, or ${instead}.`;
    default:
      return `The camera could not be opened; ${instead}.`;
  }
}

/** BarcodeDetector where it exists and reads QR codes, else jsQR (a dynamic import). */
async function frameReader(needBytes: boolean): Promise<FrameReader> {
  const Detector = (globalThis as { BarcodeDetector?: DetectorClass }).BarcodeDetector;
  if (Detector && !needBytes) {
    const formats = (await Detector.getSupportedFormats?.().catch(() => [])) ?? ["qr_code"];
    if (formats.includes("qr_code")) {
      const detector = new Detector({ formats: ["qr_code"] });
      return async (video) =>
        (await detector.detect(video)).map((c) => ({ text: c.rawValue, bytes: null }));
    }
  }
  return (await import("./qr_decode")).frameReader();
}

export class QrScan {
  #stream: MediaStream | null = null;
  #running = false;

  /** `needBytes`: the screen needs the code's exact bytes (not only its text), so jsQR reads
   * it even where BarcodeDetector exists. */
  constructor(
    private readonly video: HTMLVideoElement,
    private readonly handlers: ScanHandlers,
    private readonly instead: string,
    private readonly needBytes = false,
  ) {}

  get running(): boolean {
    return this.#running;
  }

  /** Open the camera and read frames until a wanted code, stop() or a problem. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const reader = frameReader(this.needBytes); // loads while the camera opens
    reader.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: { ideal: "environment" } },
        audio: false,
      });
    } catch (exc) {
      return this.#end(cameraProblem(exc, this.instead));
    }
    if (!this.#running) {
      stream.getTracks().forEach((t) => t.stop()); // stopped while the browser asked
      return;
    }
    this.#stream = stream;
    for (const track of stream.getVideoTracks()) {
      track.addEventListener("ended", () => {
        if (this.#stream === stream)
          this.#end(`The camera stopped; scan again, or ${this.instead}.`);
      });
    }
    this.video.srcObject = stream;
    this.video.hidden = false;
    await this.video.play().catch(() => undefined); // muted, so autoplay rules allow it
    let read: FrameReader;
    try {
      read = await reader;
    } catch {
      return this.#end(
        `The QR reader could not be loaded; check the connection and scan again, or ${this.instead}.`,
      );
    }
    while (this.#stream === stream) {
      if (!this.video.isConnected) return this.#end(""); // the screen was left
      if (document.hidden) {
        return this.#end("The camera stopped while the page was hidden; scan again.");
      }
      const found = await Promise.resolve(read(this.video)).catch(() => []);
      if (this.#stream !== stream) return; // stopped while reading
      if (found.some((code) => this.handlers.code(code))) return this.stop();
      await new Promise((r) => setTimeout(r, SCAN_EVERY_MS));
    }
  }

  /** Stop the camera (its light goes off) and hide the view. */
  stop(): void {
    this.#running = false;
    this.#stream?.getTracks().forEach((t) => t.stop());
    this.#stream = null;
    this.video.srcObject = null;
    this.video.hidden = true;
  }

  #end(problem: string): void {
    this.stop();
    this.handlers.ended(problem);
  }
}
