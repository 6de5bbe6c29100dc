"""The browser approves linking a new device of its account (issue 9), as `porch devices link
URI` does: a terminal (`porch link`, the Python SDK's Client.link) and a second browser each
show a porch://link URI, the first browser's Devices screen reads it, shows the new device's
name and key check, and puts the encrypted ProvisionMessage into its channel. Then what each
device sends shows on the other as its own (sent copies, spec D). docs/protocol.md section 7,
"Linking a device"."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from porch.client import Client
from porch.crypto.provisioning_uri import parse_provisioning_uri
from tests.e2e.pages import (
    axe_context,
    next_message,
    open_chat,
    register_in_browser,
    send_in_browser,
    watched,
)
from tests.e2e.test_web_link import link_in_browser, own_copy, screen_problems
from tests.integration.server import ServerProcess


def key_check(uri: str) -> str:
    """What both devices show: the first 12 characters of the URI's key, in fours."""
    raw = base64.urlsafe_b64encode(parse_provisioning_uri(uri).public_key).rstrip(b"=")
    text = raw[:12].decode()
    return " ".join(text[i : i + 4] for i in range(0, 12, 4))


async def approve_in_browser(page: Page, uri: str, name: str) -> None:
    """Devices, "Link a new device": paste, check the name and key, link."""
    await page.get_by_label("Link address of the new device", exact=True).fill(uri)
    await page.get_by_role("button", name="Check", exact=True).click()
    confirm = page.get_by_role("group", name=f"Link a new device “{name}”?")
    await expect(confirm).to_be_visible()
    await expect(confirm.locator(".key-check")).to_have_text(key_check(uri))
    await confirm.get_by_role("button", name="Link this device").click()
    await expect(page.locator(".link-new [role=status]")).to_have_text(
        f"Sent your account's keys to “{name}”; it finishes linking by itself."
    )


async def test_the_browser_links_a_terminal_and_both_see_what_the_other_sends(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
    tmp_path: Path,
) -> None:
    carol = await register_client(username="carol")
    context = await axe_context(browser)
    async with carol, watched(context) as page:
        await register_in_browser(page, web_server, "alice")
        await open_chat(page, "@carol")
        await send_in_browser(page, "before the terminal")
        assert (await next_message(carol)).text == "before the terminal"
        await page.get_by_role("button", name="← Chats").click()
        await page.get_by_role("button", name="Devices").click()
        await expect(page.locator("li.device")).to_have_count(1)

        # Not a link address: a sentence that says what to copy, and nothing is sent.
        await page.get_by_label("Link address of the new device", exact=True).fill("hello")
        await page.get_by_role("button", name="Check", exact=True).click()
        await expect(page.locator(".link-new [role=alert]")).to_contain_text(
            "copy the whole porch://link?... text the new device shows."
        )

        shown: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        linking = asyncio.create_task(
            Client.link(
                web_server.url, tmp_path / "terminal", name="terminal", show_uri=shown.set_result
            )
        )
        uri = await asyncio.wait_for(shown, 10)
        # Cancelling at the question sends nothing: the terminal still waits.
        await page.get_by_label("Link address of the new device", exact=True).fill(uri)
        await page.get_by_role("button", name="Check", exact=True).click()
        await expect(page.locator(".link-confirm")).to_contain_text(key_check(uri))
        assert await screen_problems(page, "devices-link-confirm") == []
        await page.get_by_role("button", name="Cancel").click()
        await expect(page.locator(".link-new [role=status]")).to_have_text("Nothing was linked.")
        assert not linking.done()

        await approve_in_browser(page, uri, "terminal")
        config = await asyncio.wait_for(linking, 30)
        assert (config.account_id, config.device_id, config.username) == (
            await page.evaluate("window.porch.profile.config.accountId"),
            2,
            "alice",
        )
        await expect(page.locator("li.device")).to_have_count(2)  # the list looks by itself
        await expect(page.locator("li.device").nth(1)).to_contain_text("terminal")

        terminal = Client(tmp_path / "terminal")
        async with terminal:
            await terminal.wait_connected(10)
            # The browser writes: Carol gets it; the new terminal gets the sent copy.
            await page.get_by_role("button", name="← Chats").click()
            await page.get_by_role("button", name="@carol").click()
            await send_in_browser(page, "the browser writes")
            assert (await next_message(carol)).text == "the browser writes"
            copy = await own_copy(terminal)
            assert (copy.text, copy.to, copy.sender_device) == (
                "the browser writes",
                carol.account_id,
                1,
            )
            # The terminal writes: Carol gets it; the browser shows it as its own.
            await terminal.send_text("@carol", "the terminal writes")
            got = await next_message(carol)
            assert (got.text, got.sender_device) == ("the terminal writes", 2)
            await expect(page.locator("li.message.out .body")).to_have_text(
                ["before the terminal", "the browser writes", "the terminal writes"]
            )
            # Carol writes: both devices get it.
            await carol.send_text(got.sender, "to both of you")
            assert (await next_message(terminal)).text == "to both of you"
            await expect(page.locator("li.message.in .body")).to_have_text("to both of you")


async def test_the_browser_links_a_second_browser(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    carol = await register_client(username="carol")
    first_context = await browser.new_context()
    second_context = await browser.new_context()
    async with carol, watched(first_context) as first, watched(second_context) as second:
        await register_in_browser(first, web_server, "dora")
        await first.get_by_role("button", name="Devices").click()
        uri = await link_in_browser(second, web_server, "tablet")
        # The new browser shows the same key check the approving one asks about.
        await expect(second.locator(".key-check")).to_have_text(key_check(uri))
        await approve_in_browser(first, uri, "tablet")
        await expect(second.get_by_role("heading", name="Chats")).to_be_visible()
        await expect(second.locator("#connection")).to_have_attribute("data-state", "online")
        await expect(first.locator("li.device")).to_have_count(2)

        # The new browser writes to Carol; the first one shows it as its own.
        await open_chat(second, "@carol")
        await send_in_browser(second, "from the tablet")
        got = await next_message(carol)
        assert (got.text, got.sender_device) == ("from the tablet", 2)
        await first.get_by_role("button", name="← Chats").click()
        await first.get_by_role("button", name="@carol").click()
        await expect(first.locator("li.message.out .body")).to_have_text("from the tablet")
        # And the other way round.
        await send_in_browser(first, "from the first browser")
        got = await next_message(carol)
        assert (got.text, got.sender_device) == ("from the first browser", 1)
        await expect(second.locator("li.message.out .body")).to_have_text(
            ["from the tablet", "from the first browser"]
        )
        await expect(second.locator("li.message.out").last).to_have_attribute(
            "data-status", re.compile(".+")
        )
