"""A browser text to a verified contact whose key changed is held, not sent and not failed
(docs/design.md, "Verified contacts"; docs/security.md, "Key verification and identity
changes"), as the SDK pauses it: the browser marks a Python user verified, the Python user
registers his number again (a new master key), the browser's next text shows "held" and the
Python side gets nothing, also after a reload; once the browser accepts the new number the text
goes to the new key and its tick moves. axe-core on the held state, phone and desktop, light
and dark."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

from playwright.async_api import Browser, Page, expect

from porch.client import Client, Message
from tests.e2e.pages import (
    axe_context,
    next_message,
    open_chat,
    register_in_browser,
    send_in_browser,
    watched,
)
from tests.e2e.test_web_screens import check_all
from tests.integration.server import ServerProcess

HELD = "Not sent: waiting for you to compare the new safety number."
QUIET_S = 3.0  # how long the Python side is watched for a message that must not come


async def open_contact_info(page: Page, label: str) -> None:
    await page.get_by_role("button", name=f"Contact info for {label}").click()
    await expect(page.get_by_role("heading", name=label, exact=True)).to_be_visible()
    await expect(page.locator(".digits")).to_be_visible()


async def no_message(client: Client, seconds: float = QUIET_S) -> None:
    """Nothing the user wrote reaches `client` for `seconds` (receipts may)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        event = await client.next_event(left)
        assert not isinstance(event, Message), f"a held text was delivered: {event.text!r}"


async def test_a_text_to_a_verified_contact_whose_key_changed_is_held_until_accepted(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    context = await axe_context(browser)
    async with watched(context) as page:
        bob = await register_client(username="bob")
        async with bob:
            await register_in_browser(page, web_server, "hana")
            await open_chat(page, "@bob")
            await send_in_browser(page, "first, to the old key")
            assert (await next_message(bob)).text == "first, to the old key"
            await open_contact_info(page, "@bob")
            await page.get_by_role("button", name="Mark verified").click()
            await expect(page.locator(".verification")).to_have_text("Marked @bob verified.")
            await page.keyboard.press("Escape")
            phone, bob_id = bob.config.phone, bob.account_id
        # Bob registers his number again: the same account, a new master key and device.
        new_bob = await register_client(phone)
        async with new_bob:
            assert new_bob.account_id == bob_id
            # The browser does not know yet: its text goes to the old device, the server
            # answers stale_devices, and the claim that follows brings the new key: held.
            await send_in_browser(page, "held for a new number")
            mine = page.locator("li.message.out").last
            await expect(mine).to_have_attribute("data-held", "true")
            await expect(mine).to_have_attribute("data-status", "queued")
            await expect(mine.locator(".held-note")).to_have_text(HELD)
            await expect(mine.locator(".tick")).to_have_attribute("aria-label", "held, not sent")
            await expect(page.locator(".chat-warning")).to_contain_text(
                "@bob's safety number changed since you verified it"
            )
            await no_message(new_bob)
            assert await check_all(page, "held") == []

            # A reload: still held, and the outbox that starts again does not send it.
            await page.reload()
            await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
            await page.locator(f'button.conversation[data-peer="{bob_id}"]').click()
            held = page.locator("li.message.out").last
            await expect(held).to_have_attribute("data-held", "true")
            await expect(held.locator(".held-note")).to_have_text(HELD)
            await no_message(new_bob)

            # Accepting the new number sends it, to the new key; the tick moves on.
            await open_contact_info(page, "@bob")
            await expect(page.locator(".contact .warning")).to_contain_text(
                "@bob's safety number changed since you verified it"
            )
            await page.get_by_role("button", name="Accept without verifying").click()
            await expect(page.locator(".verification")).to_have_text(
                "Accepted the new safety number with @bob; not verified."
            )
            got = await next_message(new_bob)
            assert got.text == "held for a new number"
            assert got.sender == (await new_bob.resolve("@hana"))
            await page.keyboard.press("Escape")
            sent = page.locator("li.message.out").last
            await expect(sent).not_to_have_attribute("data-held", "true")
            await expect(sent.locator(".held-note")).to_have_count(0)
            await expect(sent).to_have_attribute("data-status", re.compile(r"^(sent|delivered)$"))
            await expect(sent).to_have_attribute("data-status", "delivered")
            await expect(page.locator(".chat-warning")).to_be_hidden()
    await context.close()
