"""The browser client end to end (issue 9): headless Debian Chromium driven by Playwright
(tests/e2e/conftest.py), a real `porch serve` on loopback serving the built web app, and a
Python SDK user. Every page is watched: a CSP violation, console error or page error fails it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from playwright.async_api import Browser, BrowserContext, expect

from porch.client import Client, ReceiptEvent
from tests.e2e.pages import next_message, open_chat, register_in_browser, send_in_browser, watched
from tests.integration.conftest import next_phone
from tests.integration.server import ServerProcess


async def test_browser_and_python_chat_both_ways_and_survive_a_reload(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    context = await browser.new_context()  # a fresh profile: its own IndexedDB
    async with bob, watched(context) as page:
        await register_in_browser(page, web_server, "alice")
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
        # A message while the list is shown counts as unread until the chat is opened.
        await bob.send_text("@alice", "one more")
        await expect(page.locator(".conversation .unread")).to_have_text("1")
        await expect(page.locator(".conversation .preview")).to_have_text("one more")
        await page.get_by_role("button", name="@bob").click()
        await expect(bodies.last).to_have_text("one more")
        await page.get_by_role("button", name="← Chats").click()
        await expect(page.locator(".conversation .unread")).to_have_count(0)


async def test_a_message_queued_offline_and_the_browser_closed_is_delivered_on_reopen(
    launch_profile: Callable[[str], Awaitable[BrowserContext]],
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    context = await launch_profile("carol")
    async with watched(context) as page:
        await register_in_browser(page, web_server, "carol")
        await open_chat(page, "@bob")
        web_server.stop()
        # The server is down: the browser says so, and the message waits in its outbox.
        await expect(page.locator("#connection")).not_to_have_attribute("data-state", "online")
        await send_in_browser(page, "written while offline")
        await expect(page.locator("li.message.out")).to_have_attribute("data-status", "queued")
    await context.close()  # the whole browser is gone before anything could be sent

    web_server.start()
    context = await launch_profile("carol")  # the same browser profile, reopened
    async with bob, watched(context) as page:
        await page.goto(web_server.url)
        got = await next_message(bob)
        assert got.text == "written while offline"
        await page.get_by_role("button", name="@bob").click()
        await expect(page.locator("li.message.out")).to_have_attribute("data-status", "delivered")
    await context.close()


async def test_two_tabs_share_one_connection_and_show_the_same_conversation(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob_phone = next_phone()
    bob = await register_client(bob_phone)
    context = await browser.new_context()
    async with bob, watched(context) as first:
        await register_in_browser(first, web_server, "dana")
        await open_chat(first, bob_phone)  # by phone number this time
        async with watched(context) as second:
            await second.goto(web_server.url)
            # The second tab waits for the connection; the first keeps it (nobody kicked off).
            await expect(second.locator("#connection")).to_have_attribute("data-state", "elsewhere")
            await expect(first.locator("#connection")).to_have_attribute("data-state", "online")
            await second.get_by_role("button", name=bob_phone).click()
            await send_in_browser(second, "from the second tab")
            assert (await next_message(bob)).text == "from the second tab"
            await bob.send_text("@dana", "seen in both tabs")
            for page in (first, second):
                await expect(page.locator("li.message.in .body")).to_have_text("seen in both tabs")
                await expect(page.locator("li.message.out")).to_have_attribute(
                    "data-status", "delivered"
                )
            # The first tab closes: the second takes the connection over.
            await first.close()
            await expect(second.locator("#connection")).to_have_attribute("data-state", "online")
            await bob.send_text("@dana", "after the handover")
            await expect(second.locator("li.message.in .body").last).to_have_text(
                "after the handover"
            )
