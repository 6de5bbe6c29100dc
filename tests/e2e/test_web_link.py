"""Linking the browser as a second device of a terminal (Python SDK) account (issue 9): the
browser shows the porch://link URI, the terminal approves it as `porch devices link URI` does,
then both devices get what a third party sends, each sees what the other sent as its own
outgoing message (sent copies, spec D), and a reload keeps it all. docs/protocol.md section 7,
"Linking a device"; docs/protocol.md, "Sent copies"."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Browser, Page, expect

from porch.client import Client, Message
from porch.client.errors import ClientError
from porch.client.linking import listed_devices
from porch.crypto.provisioning_uri import parse_provisioning_uri
from tests.e2e.pages import axe_context, next_message, send_in_browser, watched
from tests.e2e.test_web_screens import SIZES, check
from tests.integration.server import ServerProcess


async def link_in_browser(page: Page, srv: ServerProcess, name: str) -> str:
    """Open "Link to an existing account" and return the URI the page shows."""
    await page.goto(srv.url)
    await page.get_by_role("button", name="Link to an existing account").click()
    await page.get_by_label("Device name", exact=True).fill(name)
    await page.get_by_role("button", name="Show link code").click()
    await expect(page.get_by_role("img", name="QR code of the link address")).to_be_visible()
    await expect(page.locator("#link-state")).to_have_text("Waiting for approval…")
    await expect(page.locator("#link-countdown")).to_have_text(
        re.compile(r"^(10:00|9:[0-5]\d) left$")
    )
    return await page.get_by_label("Link address", exact=True).input_value()


async def screen_problems(page: Page, view: str) -> list[str]:
    """axe-core's serious findings and sideways overflow, desktop and phone, light and dark."""
    problems: list[str] = []
    for size, (width, height) in SIZES.items():
        await page.set_viewport_size({"width": width, "height": height})
        for scheme in ("light", "dark"):
            await page.emulate_media(color_scheme=scheme)
            problems += await check(page, f"{view}-{size}-{scheme}")
    await page.set_viewport_size({"width": 1280, "height": 800})
    return problems


async def own_copy(client: Client, timeout: float = 20) -> Message:
    """The next sent copy the terminal receives (a Message with outgoing=True)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        message = await next_message(client, left)
        if message.outgoing:
            return message
    raise AssertionError("no sent copy arrived")


async def test_the_browser_links_to_a_terminal_account_and_shares_its_conversations(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    terminal = await register_client(username="alice")
    carol = await register_client(username="carol")
    context = await browser.new_context()
    async with terminal, carol, watched(context) as page:
        uri = await link_in_browser(page, web_server, "e2e browser")
        shown = parse_provisioning_uri(uri)  # what `porch devices link URI` checks
        assert shown.name == "e2e browser"
        await terminal.link_device(uri)
        await expect(page.get_by_role("heading", name="Chats")).to_be_visible()
        await expect(page.locator("#connection")).to_have_attribute("data-state", "online")

        # The account's devices, this one marked; the terminal's can be removed from here.
        await page.get_by_role("button", name="Devices").click()
        devices = page.locator("li.device")
        await expect(devices).to_have_count(2)
        await expect(devices.nth(1)).to_have_attribute("aria-current", "true")
        await expect(devices.nth(1)).to_contain_text("e2e browser")
        await expect(devices.nth(1)).to_contain_text("Device 2 · this device")
        await expect(
            devices.nth(0).get_by_role("button", name=re.compile("^Remove"))
        ).to_be_visible()
        await expect(devices.nth(1).get_by_role("button")).to_have_count(0)
        assert [d["device_id"] for d in await terminal.devices()] == [1, 2]
        await page.get_by_role("button", name="← Chats").click()

        # A third party writes to the account: both devices get it.
        await carol.send_text("@alice", "hello to both")
        got = await next_message(terminal)
        assert (got.text, got.outgoing) == ("hello to both", False)
        await page.get_by_role("button", name="@carol").click()
        bodies = page.locator("li.message .body")
        await expect(page.locator("li.message.in .body")).to_have_text("hello to both")

        # The terminal answers: Carol gets it; the browser shows it as its own, same chat.
        await terminal.send_text("@carol", "the terminal answers")
        assert (await next_message(carol)).text == "the terminal answers"
        await expect(page.locator("li.message.out .body")).to_have_text("the terminal answers")

        # The browser writes: Carol gets it from Alice; the terminal gets the sent copy.
        await send_in_browser(page, "the browser writes")
        from_browser = await next_message(carol)
        assert (from_browser.sender, from_browser.sender_device) == (terminal.account_id, 2)
        assert from_browser.text == "the browser writes"
        copy = await own_copy(terminal)
        assert (copy.text, copy.to, copy.sender_device) == (
            "the browser writes",
            carol.account_id,
            2,
        )
        outgoing = [m.text for m in terminal.history(carol.account_id) if m.outgoing]
        assert outgoing == ["the terminal answers", "the browser writes"]

        # A reload keeps the linked profile, the conversation and both directions.
        await page.reload()
        await page.get_by_role("button", name="@carol").click()
        await expect(bodies).to_have_text(
            ["hello to both", "the terminal answers", "the browser writes"]
        )
        await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
        await carol.send_text("@alice", "after the reload")
        await expect(bodies.last).to_have_text("after the reload")
        assert (await next_message(terminal)).text == "after the reload"

        # Read on the terminal, read in the browser: its unread count clears (read-state sync).
        await page.get_by_role("button", name="← Chats").click()
        await carol.send_text("@alice", "read me anywhere")
        await expect(page.locator(".conversation .unread")).to_have_text("1")
        unread = await next_message(terminal)
        assert unread.text == "read me anywhere"
        await terminal.mark_read(carol.account_id, [unread.id])
        await expect(page.locator(".conversation .unread")).to_have_count(0)


async def test_cancelling_a_link_returns_to_the_start_and_a_new_uri_is_made(
    browser: Browser, web_server: ServerProcess
) -> None:
    context = await axe_context(browser)
    async with watched(context) as page:
        first = await link_in_browser(page, web_server, "tablet")
        left = await page.locator("#link-countdown").text_content()
        await expect(page.locator("#link-countdown")).not_to_have_text(left or "")  # it counts
        assert await screen_problems(page, "link") == []
        await page.get_by_role("button", name="Cancel").click()
        await expect(
            page.get_by_role("heading", name="Link to an existing account")
        ).to_be_visible()
        assert await screen_problems(page, "link-start") == []
        await page.get_by_role("button", name="Show link code").click()
        second = await page.get_by_label("Link address", exact=True).input_value()
        assert parse_provisioning_uri(second).channel_id != parse_provisioning_uri(first).channel_id
        await page.get_by_role("button", name="Cancel").click()
        await page.get_by_role("button", name="Back").click()
        await expect(
            page.get_by_role("heading", name="Register with your phone number")
        ).to_be_visible()
        assert await screen_problems(page, "register") == []


async def test_the_browser_removes_the_terminal_and_publishes_the_list_without_it(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    terminal = await register_client(username="erin")
    carol = await register_client(username="carol")
    context = await axe_context(browser)
    async with carol, watched(context) as page:
        async with terminal:
            await terminal.link_device(await link_in_browser(page, web_server, "laptop"))
            await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
            await terminal.wait_connected(10)
            await page.get_by_role("button", name="Devices").click()
            await expect(page.locator("li.device")).to_have_count(2)
            assert await screen_problems(page, "devices") == []
            remove = page.get_by_role("button", name=re.compile(r"^Remove .*\(device 1\)$"))
            await remove.click()  # asks once more on the same button
            await expect(page.locator("li.device")).to_have_count(2)
            await page.get_by_role("button", name=re.compile(r"^Confirm removal")).click()
            await expect(page.locator("li.device")).to_have_count(1)
            await expect(page.locator("li.device")).to_contain_text("Device 2 · this device")
            with pytest.raises(ClientError) as ended:  # the terminal's connection ends at once
                while True:
                    await terminal.next_event(10)
            assert ended.value.code == "revoked"
        # The list the browser signed with the account's master key names only the browser.
        keys = await carol.api.get_keys(terminal.account_id)
        version, listed = listed_devices(keys, keys.master_key)
        assert (version, [d.device_id for d in listed]) == (3, [2])
        await carol.send_text("@erin", "only the browser now")
        await page.get_by_role("button", name="← Chats").click()
        await page.get_by_role("button", name="@carol").click()
        await expect(page.locator("li.message.in .body")).to_have_text("only the browser now")
        # The browser's next send still names the removed device as its own; the server's
        # refusal drops it and the message goes, to Carol only.
        await send_in_browser(page, "the terminal is gone")
        assert (await next_message(carol)).text == "the terminal is gone"
        await expect(page.locator("li.message.out")).to_have_attribute("data-status", "delivered")
