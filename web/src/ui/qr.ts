/**
 * A QR code as inline SVG, built with DOM calls (no markup strings, nothing inline that the
 * CSP's style-src would block). qrcode-generator (bundled, pinned) picks the smallest version
 * that holds the text at error correction level M; the SVG keeps the standard 4-module quiet
 * zone and dark modules on a light ground whatever the colour scheme, so phones can scan it.
 */

import qrcode from "qrcode-generator";

const SVG_NS = "http://www.w3.org/2000/svg";
export const QUIET_ZONE = 4;

/** The modules of `text`: true for dark, row by row (for the SVG and for tests). */
export function qrModules(text: string): boolean[][] {
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const n = qr.getModuleCount();
  return Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => qr.isDark(r, c)));
}

/** An <svg role="img"> of the QR code of `text`, named `label` for screen readers. */
export function renderQr(text: string, label: string): SVGElement {
  const modules = qrModules(text);
  const size = modules.length + 2 * QUIET_ZONE;
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("class", "qr");
  svg.setAttribute("shape-rendering", "crispEdges");
  const ground = document.createElementNS(SVG_NS, "rect");
  ground.setAttribute("width", String(size));
  ground.setAttribute("height", String(size));
  ground.setAttribute("fill", "#fff");
  let d = "";
  modules.forEach((row, r) =>
    row.forEach((dark, c) => {
      if (dark) d += `M${c + QUIET_ZONE} ${r + QUIET_ZONE}h1v1h-1z`;
    }),
  );
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(ground, path);
  return svg;
}
