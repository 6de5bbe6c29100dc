/**
 * Attachments inside a bubble: the thumbnail the pointer carries is shown at once; a click
 * (or Enter) downloads the blob, verifies and decrypts it (net/media.ts) and shows the image,
 * or offers the file for saving. Decrypted bytes live only in memory, as object URLs revoked
 * when their message goes (deleted, expired) or the chat closes.
 */

import type { StoredMessage } from "../core/types";
import { ClientError } from "../core/errors";
import { CryptoError } from "../crypto/errors";
import type { Attachment } from "../crypto/rich";
import { type MediaTransfers, humanSize } from "../net/media";
import { decode as decodeBlurhash } from "blurhash";
import { h } from "./dom";

const BLUR_SIDE = 32;
const SHOWN_TYPES = new Set(["image/jpeg", "image/png", "image/webp", "image/gif"]);

interface Loaded {
  url: string;
  type: string;
}

interface Transfer {
  progress: number; // 0..1
  error: string | null;
}

/** A sentence for a failed download (never a stack trace). */
export function downloadError(exc: unknown): string {
  if (exc instanceof CryptoError)
    return "This attachment was altered or damaged on the way (it does not match what the sender sent); ask the sender to send it again.";
  if (exc instanceof ClientError) return sentence(exc.message);
  return "The attachment could not be opened; try again.";
}

export function sentence(text: string): string {
  const s = text.trim();
  if (!s) return s;
  return s[0]!.toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? "" : ".");
}

export class MediaView {
  readonly #thumbs = new Map<string, string>();
  readonly #full = new Map<string, Loaded>();
  readonly #transfers = new Map<string, Transfer>();

  constructor(
    private readonly transfers: MediaTransfers,
    private readonly changed: () => void,
    private readonly saveAs: (url: string, name: string) => void = clickDownload,
  ) {}

  thumbnail(a: Attachment): string | null {
    if (!a.thumbnail) return null;
    let url = this.#thumbs.get(a.id);
    if (!url) {
      url = URL.createObjectURL(new Blob([a.thumbnail.slice()], { type: "image/jpeg" }));
      this.#thumbs.set(a.id, url);
    }
    return url;
  }

  full(a: Attachment): Loaded | null {
    return this.#full.get(a.id) ?? null;
  }

  transfer(a: Attachment): Transfer | null {
    return this.#transfers.get(a.id) ?? null;
  }

  /** Download, verify and decrypt; an image is then shown, a file offered for saving. */
  async open(a: Attachment): Promise<void> {
    const loaded = this.#full.get(a.id);
    if (loaded) {
      if (!shown(a)) this.saveAs(loaded.url, fileName(a));
      return;
    }
    if (this.#transfers.get(a.id)?.error === null) return; // already on its way
    const state: Transfer = { progress: 0, error: null };
    this.#transfers.set(a.id, state);
    this.changed();
    let last = 0;
    try {
      const plain = await this.transfers.download(a, (fraction) => {
        state.progress = fraction;
        if (fraction - last >= 0.05) {
          last = fraction;
          this.changed();
        }
      });
      const url = URL.createObjectURL(new Blob([plain.slice()], { type: a.contentType }));
      this.#full.set(a.id, { url, type: a.contentType });
      this.#transfers.delete(a.id);
      if (!shown(a)) this.saveAs(url, fileName(a));
    } catch (exc) {
      state.error = downloadError(exc);
    }
    this.changed();
  }

  /** Free what messages no longer on screen held. */
  keepOnly(ids: Set<string>): void {
    for (const map of [this.#thumbs, this.#full]) {
      for (const [id, value] of map) {
        if (ids.has(id)) continue;
        URL.revokeObjectURL(typeof value === "string" ? value : value.url);
        map.delete(id);
      }
    }
  }

  dispose(): void {
    this.keepOnly(new Set());
  }
}

/** The blurhash drawn small (CSS scales it up): what a photo without a thumbnail shows. */
function blurred(hash: string, width?: number, height?: number): HTMLCanvasElement | null {
  const w = BLUR_SIDE;
  const ratio = width && height ? height / width : 1;
  const hgt = Math.max(1, Math.min(BLUR_SIDE * 4, Math.round(BLUR_SIDE * ratio)));
  try {
    const pixels = decodeBlurhash(hash, w, hgt);
    const el = h("canvas", { class: "blurhash", width: w, height: hgt, "aria-hidden": "true" });
    el.getContext("2d")?.putImageData(new ImageData(new Uint8ClampedArray(pixels), w, hgt), 0, 0);
    return el;
  } catch {
    return null; // a blurhash that does not decode: the plain placeholder
  }
}

function clickDownload(url: string, name: string): void {
  const link = h("a", { href: url, download: name, class: "visually-hidden" });
  document.body.append(link);
  link.click();
  link.remove();
}

function shown(a: Attachment): boolean {
  return SHOWN_TYPES.has(a.contentType);
}

function fileName(a: Attachment): string {
  return a.name ?? "attachment";
}

export function attachmentView(
  _m: StoredMessage,
  a: Attachment,
  index: number,
  media: MediaView | null,
): HTMLElement {
  const name = fileName(a);
  const transfer = media?.transfer(a) ?? null;
  const loaded = media?.full(a) ?? null;
  const open = () => void media?.open(a);
  const status =
    transfer &&
    (transfer.error
      ? h("p", { class: "error", role: "alert" }, transfer.error)
      : h("progress", {
          max: 1,
          value: transfer.progress,
          "aria-label": `Downloading ${name}`,
        }));
  const attrs = { class: "attachment", "data-media": a.id, "data-index": index };
  if (shown(a)) {
    if (loaded) {
      return h(
        "figure",
        { ...attrs, class: "attachment image loaded" },
        h("img", {
          class: "full",
          src: loaded.url,
          alt: `Photo ${name}`,
          width: a.width,
          height: a.height,
        }),
        h(
          "button",
          {
            type: "button",
            class: "save",
            onclick: () => (media ? clickDownload(loaded.url, name) : undefined),
          },
          `Save ${name}`,
        ),
      );
    }
    const thumb = media?.thumbnail(a);
    return h(
      "figure",
      { ...attrs, class: "attachment image" },
      h(
        "button",
        {
          type: "button",
          class: "thumb",
          "aria-label": `Open photo ${name}`,
          onclick: open,
          disabled: media === null,
        },
        thumb
          ? h("img", { class: "thumbnail", src: thumb, alt: "", width: a.width, height: a.height })
          : (a.blurhash && blurred(a.blurhash, a.width, a.height)) ||
              h("span", { class: "placeholder" }, `🖼 ${name}`),
      ),
      status,
    );
  }
  return h(
    "figure",
    { ...attrs, class: "attachment file" },
    h(
      "button",
      {
        type: "button",
        class: "file",
        "aria-label": `Download ${name} (${humanSize(a.size)})`,
        onclick: open,
        disabled: media === null,
      },
      `📎 ${name} · ${humanSize(a.size)}`,
    ),
    status,
  );
}
