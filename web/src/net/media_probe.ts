/**
 * An image's width and height from its header, before anything decodes it (the role of
 * Pillow's lazy open in src/porch/client/media_prep.py): a picture of more than MAX_PIXELS is
 * sent as a plain file and never drawn, so a small file that would decode to gigabytes of
 * pixels (a decompression bomb) cannot exhaust the tab. Reads PNG IHDR, the JPEG SOFn
 * segment, the GIF logical screen and WebP's VP8/VP8L/VP8X headers; null when it cannot tell.
 */

export interface Size {
  width: number;
  height: number;
}

export const HEADER_BYTES = 256 * 1024; // a JPEG's SOF may follow large EXIF and ICC segments

const u16be = (b: Uint8Array, i: number) => (b[i]! << 8) | b[i + 1]!;
const u16le = (b: Uint8Array, i: number) => b[i]! | (b[i + 1]! << 8);
const u24le = (b: Uint8Array, i: number) => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16);
const u32be = (b: Uint8Array, i: number) =>
  ((b[i]! << 24) >>> 0) + (b[i + 1]! << 16) + u16be(b, i + 2);
const ascii = (b: Uint8Array, i: number, n: number) => String.fromCharCode(...b.subarray(i, i + n));

function png(b: Uint8Array): Size | null {
  if (b.length < 24 || ascii(b, 12, 4) !== "IHDR") return null;
  return { width: u32be(b, 16), height: u32be(b, 20) };
}

function jpeg(b: Uint8Array): Size | null {
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i += 1; // fill byte
      continue;
    }
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      return { height: u16be(b, i + 5), width: u16be(b, i + 7) };
    }
    if (marker === 0xd9 || marker === 0xda) return null; // end, or scan data before any SOF
    i += 2 + u16be(b, i + 2);
  }
  return null;
}

function gif(b: Uint8Array): Size | null {
  return b.length < 10 ? null : { width: u16le(b, 6), height: u16le(b, 8) };
}

function webp(b: Uint8Array): Size | null {
  if (b.length < 30 || ascii(b, 8, 4) !== "WEBP") return null;
  const chunk = ascii(b, 12, 4);
  if (chunk === "VP8X") return { width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
  if (chunk === "VP8 ") return { width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
  if (chunk === "VP8L") {
    const bits = b[21]! | (b[22]! << 8) | (b[23]! << 16) | (b[24]! << 24);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  return null;
}

/** The size the header of `head` (the file's first bytes) declares, or null. */
export function imageSize(head: Uint8Array): Size | null {
  if (head.length >= 8 && head[0] === 0x89 && ascii(head, 1, 3) === "PNG") return png(head);
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8) return jpeg(head);
  if (head.length >= 6 && (ascii(head, 0, 6) === "GIF87a" || ascii(head, 0, 6) === "GIF89a"))
    return gif(head);
  if (head.length >= 12 && ascii(head, 0, 4) === "RIFF") return webp(head);
  return null;
}
