/**
 * The QR reader for browsers without a BarcodeDetector (Firefox, desktop Linux Chromium): a
 * camera frame drawn on a canvas, its pixels read by jsQR (pure JavaScript, Apache-2.0, no
 * eval and no worker, so the page's CSP needs nothing new; docs/design.md, "Scanning QR
 * codes"). ui/qr_scan.ts imports this module dynamically, so jsQR is a chunk of its own that
 * only those browsers fetch, and only when the camera is opened.
 */

import jsQR from "jsqr";
import type { ScannedCode } from "./qr_scan";

/** Frames are scaled down to this many pixels on their long side before decoding: a code
 * that fills a good part of the view still has several pixels a module, and a 640 px frame
 * decodes in tens of milliseconds where a 1920 px one would take hundreds. */
export const MAX_FRAME_SIDE = 640;

/** The code in an RGBA image (a canvas's ImageData), or null if there is none. Only the
 * normal colours are tried: Porch draws every code dark on light (ui/qr.ts), and trying the
 * inverted image as well would double the time per frame. */
export function decodeImage(
  data: Uint8ClampedArray,
  width: number,
  height: number,
): ScannedCode | null {
  const found = jsQR(data, width, height, { inversionAttempts: "dontInvert" });
  return found ? { text: found.data, bytes: Uint8Array.from(found.binaryData) } : null;
}

/** A reader of the video's current frame: one canvas, reused from frame to frame. */
export function frameReader(): (video: HTMLVideoElement) => ScannedCode[] {
  const canvas = document.createElement("canvas");
  // willReadFrequently: the browser keeps the canvas in memory, so getImageData is cheap.
  const context = canvas.getContext("2d", { willReadFrequently: true });
  return (video) => {
    const { videoWidth, videoHeight } = video;
    if (!context || !videoWidth || !videoHeight) return []; // no frame yet
    const scale = Math.min(1, MAX_FRAME_SIDE / Math.max(videoWidth, videoHeight));
    const width = Math.round(videoWidth * scale);
    const height = Math.round(videoHeight * scale);
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    context.drawImage(video, 0, 0, width, height);
    const found = decodeImage(context.getImageData(0, 0, width, height).data, width, height);
    return found ? [found] : [];
  };
}
