"""The contact info and settings screens end to end (issue 9): the browser and a Python SDK
user see the same safety number, the browser compares the Python side's code and marks it
verified, blocks the Python user (its message never shows) and unblocks it from settings; a
username set in settings lets a Python user find the browser by @username, and turning
discoverability off hides its number; signing out deletes the browser's profile."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from porch.client import Client
from porch.client.errors import RecipientNotFound, ServerError
from tests.e2e.pages import next_message, open_chat, register_in_browser, send_in_browser, watched
from tests.integration.server import ServerProcess


async def open_contact_info(page: Page, label: str) -> None:
    await page.get_by_role("button", name=f"Contact info for {label}").click()
    await expect(page.get_by_role("heading", name=label, exact=True)).to_be_visible()
    await expect(page.locator(".digits")).to_be_visible()


async def open_settings(page: Page) -> None:
    await page.get_by_role("button", name="Settings", exact=True).click()
    await expect(page.get_by_role("heading", name="Settings")).to_be_visible()


async def test_safety_number_verify_block_and_unblock_with_a_python_user(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    context = await browser.new_context()
    async with bob, watched(context) as page:
        await register_in_browser(page, web_server, "erin")
        erin_id = await bob.resolve("@erin")
        await open_chat(page, "@bob")
        await send_in_browser(page, "hello bob")
        assert (await next_message(bob)).text == "hello bob"

        # The same 60 digits on both sides, three lines of four groups.
        await open_contact_info(page, "@bob")
        number = (await bob.identity("@erin")).safety_number
        groups = number.groups()
        lines = [" ".join(groups[i : i + 4]) for i in range(0, 12, 4)]
        await expect(page.locator(".digits .digit-line")).to_have_text(lines)
        await expect(
            page.get_by_role("img", name="QR code of the safety number with @bob")
        ).to_be_visible()
        await expect(page.locator(".verification")).to_have_text("Not verified.")

        # Bob's code with one byte changed does not match; his real code does.
        code = number.qr_payload()
        wrong = code[:50] + bytes([code[50] ^ 1]) + code[51:]  # inside the remote half
        scan = page.get_by_label("Their code (hex, from porch verify --json)")
        await scan.fill(wrong.hex())
        await page.get_by_role("button", name="Compare").click()
        await expect(page.locator(".contact .error").first).to_contain_text("does not match")
        await scan.fill("not hex")
        await page.get_by_role("button", name="Compare").click()
        await expect(page.locator(".contact .error").first).to_contain_text(
            "not a safety number code"
        )
        await scan.fill(code.hex())
        await page.get_by_role("button", name="Compare").click()
        await expect(page.locator(".verification")).to_have_text(
            "The codes match: marked @bob verified."
        )
        # Kept in the browser's store: shown again after a reload.
        await page.reload()
        await page.get_by_role("button", name="@bob").click()
        await open_contact_info(page, "@bob")
        await expect(page.locator(".verification")).to_have_text(
            "✓ Verified: you compared this safety number."
        )
        await expect(page.get_by_role("button", name="Mark verified")).to_have_count(0)

        # Blocked: the server acknowledges Bob's send and drops it; the browser never shows it.
        await page.get_by_role("button", name="Block @bob").click()
        await expect(page.get_by_text("@bob is blocked")).to_be_visible()
        await expect(page.get_by_role("button", name="Unblock @bob")).to_be_focused()
        assert await bob.api.blocks() == []  # Bob's own list: nothing; the block is Erin's
        await bob.send_text(erin_id, "you will not see this")

        # Unblocked from settings' list.
        await page.keyboard.press("Escape")  # back to the chat
        await expect(page.get_by_label("Message", exact=True)).to_be_visible()
        await page.keyboard.press("Escape")  # back to the list
        await open_settings(page)
        blocked = page.get_by_role("list", name="Blocked accounts")
        await expect(blocked.get_by_role("listitem")).to_have_count(1)
        await blocked.get_by_role("button", name="Unblock @bob").click()
        await expect(page.get_by_text("You have blocked no one.")).to_be_visible()
        await bob.send_text(erin_id, "visible again")
        await page.get_by_role("button", name="← Chats").click()
        await page.get_by_role("button", name="@bob").click()
        bodies = page.locator("li.message .body")
        await expect(bodies.last).to_have_text("visible again")
        assert "you will not see this" not in await bodies.all_inner_texts()


async def test_username_and_discoverability_from_settings_reach_a_python_user(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    context = await browser.new_context()
    async with bob, watched(context) as page:
        phone = await register_in_browser(page, web_server, "")
        await open_settings(page)
        await expect(page.get_by_text(phone)).to_be_visible()
        username = page.get_by_label("Username", exact=True)
        await expect(username).to_have_value("")
        await username.fill("Bad name!")
        await page.get_by_role("button", name="Save username").click()
        await expect(page.locator(".username .error")).to_contain_text("usernames are 3-32")
        await username.fill("@Dora_B")
        await page.keyboard.press("Enter")
        await expect(page.get_by_text("Your username is @dora_b.")).to_be_visible()

        # A Python user finds the browser by the new username and messages it.
        dora_id = await bob.resolve("@dora_b")
        assert dora_id == await bob.resolve(phone)
        await bob.send_text("@dora_b", "found you by username")
        await page.get_by_role("button", name="← Chats").click()
        await page.get_by_role("button", name="@bob").click()
        await expect(page.locator("li.message.in .body")).to_have_text("found you by username")

        # Not discoverable: the number answers like an unknown one; the username still works.
        await page.keyboard.press("Escape")
        await open_settings(page)
        discoverable = page.get_by_label("People who have my number can find me by it")
        await expect(discoverable).to_be_checked()
        await discoverable.uncheck()
        await expect(page.get_by_text("Your number is hidden from lookups.")).to_be_visible()
        carol = await register_client()
        async with carol:
            with pytest.raises(RecipientNotFound):
                await carol.resolve(phone)
            assert await carol.resolve("@dora_b") == dora_id
        # A reload shows the server's state, not the page's.
        await page.reload()
        await open_settings(page)
        await expect(
            page.get_by_label("People who have my number can find me by it")
        ).not_to_be_checked()
        await expect(page.get_by_label("Username", exact=True)).to_have_value("dora_b")

        # Removing the username frees it: the directory no longer knows it.
        await page.get_by_role("button", name="Remove username").click()
        await expect(page.get_by_text("Username removed.")).to_be_visible()
        await expect(page.get_by_label("Username", exact=True)).to_have_value("")
        with pytest.raises(ServerError) as refused:
            await bob.api.lookup(username="dora_b")
        assert refused.value.code == "not_found"


async def test_notifications_toggle_reports_and_signing_out_deletes_the_profile(
    launch_profile: Callable[[str], Awaitable[BrowserContext]], web_server: ServerProcess
) -> None:
    # A browser on a kept profile: Chromium refuses the Push API in incognito contexts.
    context = await launch_profile("frank")
    await context.grant_permissions(["notifications"], origin=web_server.url)
    async with watched(context) as page:
        await register_in_browser(page, web_server, "frank")
        await open_settings(page)
        # Notifications: the state, and what the browser's push service answered. Headless
        # Chromium has no push service, so turning them on fails, and says so.
        push = page.locator(".panel-part", has=page.locator("#push-title"))
        await expect(push.get_by_role("status")).to_have_text("Notifications are off.")
        await page.get_by_label("Notify me of new messages when Porch is closed").check()
        await expect(push.get_by_role("alert")).to_contain_text(
            "this browser's push service did not subscribe Porch", timeout=20_000
        )
        await expect(
            page.get_by_label("Notify me of new messages when Porch is closed")
        ).not_to_be_checked()
        await page.get_by_role("button", name="Sign out of this browser").click()
        # Cancel first: nothing happens, focus returns to the button.
        await page.get_by_role("button", name="Cancel").click()
        await expect(page.get_by_role("button", name="Sign out of this browser")).to_be_focused()
        await page.get_by_role("button", name="Sign out of this browser").click()
        await expect(page.get_by_text("deletes this browser's keys and messages")).to_be_visible()
        await page.get_by_role("button", name="Yes, sign out and delete").click()
        await expect(
            page.get_by_role("heading", name="Register with your phone number")
        ).to_be_visible()
        # A fresh, empty profile: the old one's keys and history are gone for good.
        await page.reload()
        await expect(
            page.get_by_role("heading", name="Register with your phone number")
        ).to_be_visible()
        assert await page.evaluate("window.porch === undefined")
    await context.close()


async def test_a_verified_contact_whose_key_changes_is_warned_and_held_until_accepted(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    context = await browser.new_context()
    async with watched(context) as page:
        bob = await register_client(username="bob")
        async with bob:
            await register_in_browser(page, web_server, "gail")
            await open_chat(page, "@bob")
            await send_in_browser(page, "first, to the old key")
            assert (await next_message(bob)).text == "first, to the old key"
            await open_contact_info(page, "@bob")
            await page.get_by_role("button", name="Mark verified").click()
            await expect(page.locator(".verification")).to_have_text("Marked @bob verified.")
            phone = bob.config.phone
        # Bob registers his number again: a new master key (the username stays his).
        new_bob = await register_client(phone)
        async with new_bob:
            await page.keyboard.press("Escape")
            await open_contact_info(page, "@bob")  # fetches Bob's keys: the change shows
            await expect(page.locator(".contact .warning")).to_contain_text(
                "@bob's safety number changed since you verified it"
            )
            await page.keyboard.press("Escape")
            await expect(page.locator(".chat-warning")).to_contain_text("open Info to compare")
            await send_in_browser(page, "not to an unverified key")
            mine = page.locator("li.message.out")
            await expect(mine.last).to_have_attribute("data-held", "true")  # held, not failed

            await open_contact_info(page, "@bob")
            await page.get_by_role("button", name="Accept without verifying").click()
            await expect(page.locator(".verification")).to_have_text(
                "Accepted the new safety number with @bob; not verified."
            )
            await page.keyboard.press("Escape")
            await expect(page.locator(".chat-warning")).to_be_hidden()
            # The held text goes first (test_web_verified_pause.py has the rest), then the next.
            assert (await next_message(new_bob)).text == "not to an unverified key"
            await send_in_browser(page, "after accepting")
            assert (await next_message(new_bob)).text == "after accepting"
