"""Signing the browser out removes it from the account (issue 9): Settings, "Sign out" sends
the account's next signed device list without the browser (`POST /v1/devices/leave`), then
deletes the local profile. With the server out of reach it says so and offers to sign out
here only, which leaves the device on the account. docs/protocol.md, "Linked devices"."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from porch.client import Client
from porch.client.linking import listed_devices
from tests.e2e import browser as chromium
from tests.e2e.pages import TIMEOUT_MS
from tests.e2e.test_web_link import link_in_browser
from tests.e2e.test_web_settings import open_settings
from tests.integration.server import ServerProcess


@contextlib.asynccontextmanager
async def watched(context: BrowserContext) -> AsyncIterator[Page]:
    """pages.watched, less the failed loads this test makes on purpose (the aborted route)."""
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    seen = await chromium.watch(page)
    yield page
    on_purpose = ("WebSocket", "ERR_INTERNET_DISCONNECTED")
    assert [p for p in seen.problems() if not any(s in p for s in on_purpose)] == []


async def start_sign_out(page: Page) -> None:
    await open_settings(page)
    await page.get_by_role("button", name="Sign out of this browser").click()
    await expect(page.get_by_text("removes this browser from your account")).to_be_visible()
    await page.get_by_role("button", name="Yes, sign out and delete").click()


async def unreachable(route: Route) -> None:
    await route.abort("internetdisconnected")


async def test_signing_out_removes_the_browser_from_the_account(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    terminal = await register_client(username="hana")
    context = await browser.new_context()
    async with terminal, watched(context) as page:
        await terminal.link_device(await link_in_browser(page, web_server, "borrowed laptop"))
        await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
        assert [d["device_id"] for d in await terminal.devices()] == [1, 2]

        # The server out of reach: nothing is deleted, and signing out here only is offered.
        await page.route("**/v1/keys/**", unreachable)
        await start_sign_out(page)
        signout = page.locator(".panel-part", has=page.locator("#signout-title"))
        await expect(signout.get_by_role("alert").last).to_have_text(
            "The server could not be reached, so this browser is still on your account. Try "
            "again, or sign out here only and remove it later from another device (its Devices "
            "list)."
        )
        await expect(page.get_by_role("button", name="Sign out here only")).to_be_visible()
        assert [d["device_id"] for d in await terminal.devices()] == [1, 2]

        # Reachable again: the same button removes the device, then the profile.
        await page.unroute("**/v1/keys/**", unreachable)
        await page.get_by_role("button", name="Yes, sign out and delete").click()
        await expect(
            page.get_by_role("heading", name="Register with your phone number")
        ).to_be_visible(timeout=20_000)
        # `porch devices list` on the terminal: the browser is gone, and the signed list the
        # browser published names the terminal alone.
        assert [d["device_id"] for d in await terminal.devices()] == [1]
        keys = await terminal.api.get_keys(terminal.account_id)
        version, listed = listed_devices(keys, keys.master_key)
        assert (version, [d.device_id for d in listed]) == (3, [1])


async def test_signing_out_here_only_leaves_the_device_on_the_account(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    terminal = await register_client(username="ines")
    context = await browser.new_context()
    async with terminal, watched(context) as page:
        await terminal.link_device(await link_in_browser(page, web_server, "kiosk"))
        await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
        await page.route("**/v1/keys/**", unreachable)
        await start_sign_out(page)
        await page.get_by_role("button", name="Sign out here only").click()
        await expect(
            page.get_by_role("heading", name="Register with your phone number")
        ).to_be_visible()
        # Local only, as chosen: the terminal still lists the browser and can remove it.
        assert [d["device_id"] for d in await terminal.devices()] == [1, 2]
        await terminal.remove_device(2)
        assert [d["device_id"] for d in await terminal.devices()] == [1]
