/**
 * QR codes as inline SVG, drawn with DOM calls (no markup strings, no style attributes: the
 * page's CSP allows neither inline script nor inline style). The encoder is qrcode-generator
 * (pinned, bundled); the SVG's colours come from the stylesheet (`.qr-code`), so a code stays
 * dark-on-light in dark mode too, as scanners expect.
 */

import qrcode from "qrcode-generator";

const SVG = "http://www.w3.org/2000/svg";
const QUIET_ZONE = 4; // modules of light border the QR specification asks for

function encode(bytes: Uint8Array): ReturnType<typeof qrcode> {
  const code = qrcode(0, "M"); // 0: the smallest version that holds the data
  // The library's default string-to-bytes keeps each char code's low byte: a "binary string"
  // carries the bytes exactly.
  code.addData(String.fromCharCode(...bytes), "Byte");
  code.make();
  return code;
}

/** `bytes` in byte mode, error correction M; an SVG element with role img and `label`. */
export function renderQrBytes(bytes: Uint8Array, label: string): SVGElement {
  const code = encode(bytes);
  const n = code.getModuleCount();
  const size = n + 2 * QUIET_ZONE;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("class", "qr-code");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("shape-rendering", "crispEdges");
  const title = document.createElementNS(SVG, "title");
  title.textContent = label;
  const light = document.createElementNS(SVG, "rect");
  light.setAttribute("class", "qr-light");
  light.setAttribute("width", String(size));
  light.setAttribute("height", String(size));
  // One path of unit squares: a few hundred bytes of "d" instead of thousands of elements.
  let d = "";
  for (let row = 0; row < n; row++) {
    for (let col = 0; col < n; col++) {
      if (code.isDark(row, col)) d += `M${col + QUIET_ZONE} ${row + QUIET_ZONE}h1v1h-1z`;
    }
  }
  const dark = document.createElementNS(SVG, "path");
  dark.setAttribute("class", "qr-dark");
  dark.setAttribute("d", d);
  svg.append(title, light, dark);
  return svg;
}

/** `text` as UTF-8 in byte mode (the API the linking screen uses). */
export function renderQr(text: string, label: string): SVGElement {
  return renderQrBytes(new TextEncoder().encode(text), label);
}

/** The modules of `bytes`' code, dark as true (for tests: the drawing is of these). */
export function qrModules(bytes: Uint8Array): boolean[][] {
  const code = encode(bytes);
  const n = code.getModuleCount();
  return Array.from({ length: n }, (_, r) =>
    Array.from({ length: n }, (_, c) => code.isDark(r, c)),
  );
}
