/**
 * "Retrying…": a live region that says when an HTTP request failed for a reason that may pass
 * (net/retry.ts) and is being tried again, and clears when it is over. The final sentence, if
 * every attempt failed, is the error the screen that asked shows as usual.
 */

import { type RetryNotice, onRetry } from "../net/retry";
import { h } from "./dom";
import "./retry_notice.css";

const WHY: Record<RetryNotice["reason"], string> = {
  unreachable: "The server could not be reached",
  server_error: "The server had a problem",
  rate_limited: "The server asked to wait",
};

/** The sentence for a retry that is coming. */
export function retryText(n: RetryNotice): string {
  const seconds = Math.max(1, Math.round(n.delayMs / 1000));
  return `${WHY[n.reason]}; retrying in ${seconds} s (attempt ${n.attempt + 1} of ${n.attempts})…`;
}

export function installRetryNotice(root: HTMLElement = document.body): HTMLElement {
  const el = h("p", { class: "retry-notice", role: "status", id: "retry-notice" });
  el.hidden = true;
  root.append(el);
  onRetry((notice) => {
    el.textContent = notice ? retryText(notice) : "";
    el.hidden = notice === null;
  });
  return el;
}
