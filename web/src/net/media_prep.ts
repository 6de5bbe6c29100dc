/**
 * Preparing a file to attach in the browser (mirrors src/porch/client/media_prep.py; docs/
 * security.md, "Attachment encryption and metadata stripping").
 *
 * JPEG, PNG and WebP images are decoded with the EXIF orientation applied
 * (createImageBitmap, imageOrientation "from-image") and re-encoded through a canvas in their
 * own format: a canvas holds pixels only, so EXIF (GPS included), XMP and comments are gone.
 * JPEG and WebP are written at quality 0.95, PNG stays lossless. A GIF is sent as it is (it
 * carries no EXIF; re-encoding would lose its animation) but is measured. Every image gets
 * its width and height, a JPEG thumbnail of at most 256 px and 16 KiB and a 4x3 blurhash of
 * a ≤ 64 px copy, as the SDK makes them. An image that does not decode is sent as a plain
 * file; every other file is sent as it is.
 */

import { encode as blurhashEncode } from "blurhash";
import { MAX_DIMENSION, MAX_NAME_BYTES, MAX_THUMBNAIL_BYTES } from "../crypto/rich";
import { utf8Length } from "../crypto/content_checks";
import { HEADER_BYTES, imageSize } from "./media_probe";

export const DEFAULT_TYPE = "application/octet-stream";
export const MAX_PIXELS = 100_000_000; // larger is sent as a plain file, never drawn
export const QUALITY = 0.95;
export const THUMB_SIDE = 256;
export const THUMB_QUALITIES = [0.85, 0.75, 0.65, 0.55, 0.45, 0.35, 0.25, 0.15];
export const BLURHASH_SIDE = 64;
const REENCODED = new Set(["image/jpeg", "image/png", "image/webp"]);
const MEASURED = new Set([...REENCODED, "image/gif"]);
const CONTENT_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$/;

export interface Prepared {
  data: Blob; // what is encrypted and uploaded
  contentType: string;
  name: string;
  width?: number;
  height?: number;
  thumbnail?: Uint8Array;
  blurhash?: string;
}

/** A name a receiver can save under: no separators or NUL, at most 255 bytes of UTF-8. */
export function safeName(name: string): string {
  let clean = name.replace(/[/\\\0]/g, "_").trim();
  if (["", ".", ".."].includes(clean)) clean = "file";
  while (utf8Length(clean) > MAX_NAME_BYTES) clean = [...clean].slice(1).join("");
  return clean;
}

function typeOf(file: File): string {
  const type = file.type.split(";")[0]!.trim().toLowerCase();
  return type.length <= 128 && CONTENT_TYPE.test(type) ? type : DEFAULT_TYPE;
}

export async function prepare(file: File): Promise<Prepared> {
  const contentType = typeOf(file);
  const name = safeName(file.name);
  if (MEASURED.has(contentType)) {
    const image = await prepareImage(file, contentType, name);
    if (image) return image;
    return { data: file, contentType: DEFAULT_TYPE, name }; // says image, is not one
  }
  return { data: file, contentType, name };
}

function canvas(width: number, height: number): HTMLCanvasElement {
  const el = document.createElement("canvas");
  el.width = width;
  el.height = height;
  return el;
}

function toBlob(el: HTMLCanvasElement, type: string, quality?: number): Promise<Blob | null> {
  return new Promise((resolve) => el.toBlob(resolve, type, quality));
}

async function prepareImage(
  file: File,
  contentType: string,
  name: string,
): Promise<Prepared | null> {
  // Measured from the header first: never decode what would be too many pixels.
  const declared = imageSize(new Uint8Array(await file.slice(0, HEADER_BYTES).arrayBuffer()));
  if (!declared || declared.width * declared.height > MAX_PIXELS) return null;
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return null;
  }
  try {
    const { width, height } = bitmap;
    if (width < 1 || height < 1 || width * height > MAX_PIXELS) return null;
    let data: Blob = file;
    if (REENCODED.has(contentType)) {
      const full = canvas(width, height);
      full.getContext("2d")!.drawImage(bitmap, 0, 0);
      const quality = contentType === "image/png" ? undefined : QUALITY;
      const out = await toBlob(full, contentType, quality);
      // A browser that cannot write the format answers PNG (or null): never send unstripped.
      if (!out || out.type !== contentType) return null;
      data = out;
    }
    const prepared: Prepared = { data, contentType, name };
    if (width <= MAX_DIMENSION && height <= MAX_DIMENSION) {
      prepared.width = width;
      prepared.height = height;
    }
    const thumbnail = await thumbnailOf(bitmap);
    if (thumbnail) prepared.thumbnail = thumbnail;
    prepared.blurhash = blurhashOf(bitmap);
    return prepared;
  } finally {
    bitmap.close();
  }
}

/** The image scaled to fit `side` on white (transparency shows as a chat background). */
function scaled(bitmap: ImageBitmap, side: number): HTMLCanvasElement {
  const scale = Math.min(1, side / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * scale));
  const h = Math.max(1, Math.round(bitmap.height * scale));
  const el = canvas(w, h);
  const ctx = el.getContext("2d")!;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  ctx.drawImage(bitmap, 0, 0, w, h);
  return el;
}

async function thumbnailOf(bitmap: ImageBitmap): Promise<Uint8Array | null> {
  for (let side = THUMB_SIDE; side >= 16; side = Math.floor(side / 2)) {
    const small = scaled(bitmap, side);
    for (const quality of THUMB_QUALITIES) {
      const blob = await toBlob(small, "image/jpeg", quality);
      if (blob && blob.size <= MAX_THUMBNAIL_BYTES) return new Uint8Array(await blob.arrayBuffer());
    }
  }
  return null;
}

function blurhashOf(bitmap: ImageBitmap): string {
  const small = scaled(bitmap, BLURHASH_SIDE);
  const pixels = small.getContext("2d")!.getImageData(0, 0, small.width, small.height);
  return blurhashEncode(pixels.data, small.width, small.height, 4, 3);
}
