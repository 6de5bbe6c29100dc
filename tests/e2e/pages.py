"""What the browser tests do on the app's pages: register, open a chat, send; and a page
whose CSP violations, console errors and page errors fail the test."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, expect

from porch.client import Client, Message
from tests.e2e import browser as chromium
from tests.integration.conftest import next_phone
from tests.integration.server import ServerProcess

TIMEOUT_MS = 20_000
AXE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"


async def axe_context(browser: Browser, **options: Any) -> BrowserContext:
    """A browser context whose pages carry axe-core, injected through DevTools (the page's
    CSP stays strict)."""
    assert AXE.is_file(), "web/node_modules/axe-core is missing: run npm ci in web/"
    context = await browser.new_context(**options)
    await context.add_init_script(path=AXE)
    return context


@contextlib.asynccontextmanager
async def watched(context: BrowserContext) -> AsyncIterator[Page]:
    """A page whose CSP violations, console errors and page errors fail the test."""
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    seen = await chromium.watch(page)
    yield page
    # The server going away on purpose shows as failed WebSocket connects: not a problem.
    assert [p for p in seen.problems() if "WebSocket" not in p] == []


async def register_in_browser(page: Page, srv: ServerProcess, username: str) -> str:
    phone = next_phone()
    await page.goto(srv.url)
    await page.get_by_label("Phone number", exact=True).fill(phone)
    await page.get_by_role("button", name="Send code").click()
    await expect(page.get_by_label("Verification code", exact=True)).to_be_visible()
    await page.get_by_label("Verification code", exact=True).fill(srv.last_code(phone))
    await page.get_by_role("button", name="Verify").click()
    await page.get_by_label("Device name", exact=True).fill("e2e browser")
    await page.get_by_label("Username (optional)", exact=True).fill(username)
    await page.get_by_role("button", name="Finish").click()
    await expect(page.get_by_role("heading", name="Chats")).to_be_visible()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
    return phone


async def open_chat(page: Page, target: str) -> None:
    await page.get_by_label("Start a chat with", exact=True).fill(target)
    await page.get_by_role("button", name="Start chat").click()
    await expect(page.get_by_label("Message", exact=True)).to_be_focused()


async def send_in_browser(page: Page, text: str) -> None:
    await page.get_by_label("Message", exact=True).fill(text)
    await page.keyboard.press("Enter")


async def next_message(client: Client, timeout: float = 20) -> Message:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = await client.next_event(left)
        if isinstance(event, Message):
            return event
    raise AssertionError("no message arrived")
