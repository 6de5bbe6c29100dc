"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright for
Python (never a downloaded browser: `playwright install` is not used), and a watch on a page
that records what must never happen in the app (CSP violations, console errors, page errors)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
# Headless, no sandbox (containers run as root), and nothing that talks to Google's servers
# behind the test's back: the tests also prove the app needs no third-party origin.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> Path:
    """The browser, or a skip naming the package (a failure under CI, where .ci/run installs it)."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"{CHROMIUM} is missing; install Debian's browser with: apt-get install chromium"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


async def launch(playwright: Playwright, extra_args: Sequence[str] = ()) -> Browser:
    """A fresh browser: Playwright gives each launch its own empty user-data directory.
    `extra_args` are more command-line switches, e.g. the fake camera of
    tests/e2e/fake_camera.py."""
    return await playwright.chromium.launch(
        executable_path=require_chromium(), headless=True, args=[*CHROMIUM_ARGS, *extra_args]
    )


async def launch_profile(playwright: Playwright, user_data_dir: Path) -> BrowserContext:
    """A browser on a user-data directory the test keeps, so closing it and launching again
    on the same directory is a person closing and reopening the browser (IndexedDB, service
    worker and all)."""
    return await playwright.chromium.launch_persistent_context(
        user_data_dir, executable_path=require_chromium(), headless=True, args=CHROMIUM_ARGS
    )


@dataclass
class PageWatch:
    """Everything a page reported that a clean app never reports."""

    csp_violations: list[dict[str, Any]] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return (
            [f"CSP: {v}" for v in self.csp_violations]
            + [f"console: {m}" for m in self.console_errors]
            + [f"page error: {e}" for e in self.page_errors]
        )


# Runs in every document before the page's own scripts. Playwright injects it through the
# DevTools protocol, so the page's CSP does not apply to it (and it adds no inline script).
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__porchCspViolation({
    directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile,
    line: e.lineNumber, disposition: e.disposition,
  });
});
"""


async def watch(page: Page) -> PageWatch:
    """Start recording the page's CSP violations, console errors and uncaught errors; call it
    before the first navigation."""
    seen = PageWatch()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.console_errors.append(message.text)

    def on_violation(violation: dict[str, Any]) -> None:
        seen.csp_violations.append(violation)

    await page.expose_function("__porchCspViolation", on_violation)
    await page.add_init_script(_REPORT_VIOLATIONS)
    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.page_errors.append(str(error)))
    return seen
