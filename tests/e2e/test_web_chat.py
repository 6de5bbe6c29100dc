"""The browser client end to end (issue 9): headless Debian Chromium driven by Playwright, a
real Porch server on loopback serving the built web app, and a Python SDK user.

The server runs in this process with web/dist mounted at "/" (same origin, as `porch serve`
will serve it; helper W3's static serving replaces this mount when it lands), so that the
test can stop it and start it again on the same port and data directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.staticfiles import StaticFiles

from porch.client import Client, Message, ReceiptEvent
from porch.server.app import create_app
from tests.integration.conftest import next_phone, register
from tests.integration.server import (
    ServerProcess,
    free_port,
    in_process_settings,
    serving_in_process,
)

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = Path("/usr/bin/chromium")
WEB = Path(__file__).resolve().parents[2] / "web"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError(
            "CI needs /usr/bin/chromium for the browser tests (apt-get install chromium)"
        )
    pytest.skip("no /usr/bin/chromium: apt-get install chromium", allow_module_level=True)


def built_app() -> Path:
    """web/dist, built when it is missing (make web-test builds it before pytest)."""
    dist = WEB / "dist"
    if not (dist / "index.html").exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("web/dist is not built and there is no npm to build it")
        subprocess.run([npm, "run", "build"], cwd=WEB, check=True, capture_output=True)
    return dist


@contextlib.asynccontextmanager
async def porch_server(srv: ServerProcess) -> AsyncIterator[None]:
    settings = in_process_settings(srv, {})
    app = create_app(settings)
    app.mount("/", StaticFiles(directory=built_app(), html=True))
    async with serving_in_process(app, srv.port):
        yield


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = await browser.new_context()  # a fresh profile: its own IndexedDB
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            await context.close()
            await browser.close()


async def register_in_browser(page: Any, srv: ServerProcess, username: str) -> str:
    expect = playwright_api.expect
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


async def open_chat(page: Any, target: str) -> None:
    await page.get_by_label("Start a chat with", exact=True).fill(target)
    await page.get_by_role("button", name="Start chat").click()
    await playwright_api.expect(page.get_by_label("Message", exact=True)).to_be_focused()


async def send_in_browser(page: Any, text: str) -> None:
    await page.get_by_label("Message", exact=True).fill(text)
    await page.keyboard.press("Enter")


async def next_message(client: Client, timeout: float = 20) -> Message:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = await client.next_event(left)
        if isinstance(event, Message):
            return event
    raise AssertionError("no message arrived")


async def test_browser_and_python_chat_both_ways_and_survive_a_reload(tmp_path: Path) -> None:
    expect = playwright_api.expect
    srv = ServerProcess(tmp_path / "server-data", port=free_port())
    async with porch_server(srv), chromium() as context, contextlib.AsyncExitStack() as stack:
        bob = await register(srv, tmp_path / "bob", username="bob")
        await stack.enter_async_context(bob)
        page = await context.new_page()
        await register_in_browser(page, srv, "alice")
        alice_id = await bob.resolve("@alice")

        # Browser -> Python, then the ticks: delivered (Bob's client), read (Bob marks it).
        await open_chat(page, "@bob")
        await send_in_browser(page, "hello from the browser")
        got = await next_message(bob)
        assert (got.sender, got.text) == (alice_id, "hello from the browser")
        mine = page.locator("li.message.out").first
        await expect(mine).to_have_attribute("data-status", "delivered")
        await bob.mark_read(alice_id, [got.id])
        await expect(mine).to_have_attribute("data-status", "read")

        # Python -> browser; typing shows while Bob types.
        assert await bob.set_typing(alice_id, True)
        await expect(page.get_by_text("@bob is typing…")).to_be_visible()
        await bob.send_text("@alice", "hi from python")
        await expect(page.locator("li.message.in .body")).to_have_text("hi from python")
        await expect(page.get_by_text("@bob is typing…")).to_be_hidden()
        # The browser had the message on screen: Bob gets a read receipt for it.
        deadline = time.monotonic() + 20
        while True:
            event = await bob.next_event(deadline - time.monotonic())
            assert event is not None, "no read receipt from the browser"
            if isinstance(event, ReceiptEvent) and event.kind == "read":
                break

        # A reload keeps history and keys: both old messages show, and both directions go on
        # in the same sessions.
        await page.reload()
        await page.get_by_role("button", name="@bob").click()
        bodies = page.locator("li.message .body")
        await expect(bodies).to_have_text(["hello from the browser", "hi from python"])
        await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
        await send_in_browser(page, "after the reload")
        assert (await next_message(bob)).text == "after the reload"
        await bob.send_text("@alice", "python after the reload")
        await expect(bodies.last).to_have_text("python after the reload")
        # The conversation list shows the last message.
        await page.get_by_role("button", name="← Chats").click()
        await expect(page.locator(".conversation .preview")).to_have_text("python after the reload")


async def test_a_message_queued_offline_and_the_tab_closed_is_delivered_on_reopen(
    tmp_path: Path,
) -> None:
    expect = playwright_api.expect
    srv = ServerProcess(tmp_path / "server-data", port=free_port())
    async with chromium() as context, contextlib.AsyncExitStack() as stack:
        async with porch_server(srv):
            bob = await register(srv, tmp_path / "bob", username="bob")
            page = await context.new_page()
            await register_in_browser(page, srv, "carol")
            await open_chat(page, "@bob")
        # The server is down: the browser says so, and the message waits in its outbox.
        await expect(page.locator("#connection")).not_to_have_attribute("data-state", "online")
        await send_in_browser(page, "written while offline")
        await expect(page.locator("li.message.out")).to_have_attribute("data-status", "queued")
        await page.close()  # the tab is gone before anything could be sent

        async with porch_server(srv):
            await stack.enter_async_context(bob)
            page = await context.new_page()
            await page.goto(srv.url)
            got = await next_message(bob)
            assert got.text == "written while offline"
            await page.get_by_role("button", name="@bob").click()
            await expect(page.locator("li.message.out")).to_have_attribute(
                "data-status", "delivered"
            )
