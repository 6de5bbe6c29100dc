"""The conversation list and the chat view with a real conversation in them: axe-core finds
nothing serious, and nothing overflows sideways, at desktop and 360 px phone width, in light
and dark mode. With PORCH_SCREENSHOTS=1 the views are saved to docs/screenshots/ (the README
shows them): `PORCH_SCREENSHOTS=1 pytest tests/e2e/test_web_screens.py`."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from porch.client import Client
from tests.e2e.pages import next_message, open_chat, register_in_browser, send_in_browser, watched
from tests.integration.server import ServerProcess

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"desktop": (1280, 800), "phone": (360, 740)}


async def check(page: Page, name: str) -> list[str]:
    """Problems of the page as it is shown now; a screenshot when asked for."""
    problems = []
    result = await page.evaluate("axe.run(document, { resultTypes: ['violations'] })")
    for v in result["violations"]:
        print(f"\naxe-core, {name}: {v['id']} ({v['impact']}, {len(v['nodes'])} nodes)")
        if v["impact"] in ("serious", "critical"):
            problems.append(f"{name}: {v['id']}: {[n['target'] for n in v['nodes']]}")
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 0:
        problems.append(f"{name}: {overflow} px wider than the screen")
    if os.environ.get("PORCH_SCREENSHOTS"):
        out = REPO / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=out / f"{name}.png")
    return problems


async def test_list_and_chat_are_accessible_and_fit_a_phone_in_light_and_dark(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    assert AXE.is_file(), "web/node_modules/axe-core is missing: run npm ci in web/"
    bob = await register_client(username="bob")
    context = await browser.new_context()
    await context.add_init_script(path=AXE)  # through DevTools: the page's CSP stays strict
    async with bob, watched(context) as page:
        await register_in_browser(page, web_server, "erin")
        alice_id = await bob.resolve("@erin")
        await open_chat(page, "@bob")
        await send_in_browser(page, "Are we still on for Saturday?")
        got = await next_message(bob)
        await bob.mark_read(alice_id, [got.id])
        await bob.send_text("@erin", "Yes! 10 am at the market, by the bakery stall.")
        await send_in_browser(page, "Great, see you there!")
        await expect(page.locator("li.message")).to_have_count(3)
        await expect(page.locator("li.message.out").first).to_have_attribute("data-status", "read")
        await next_message(bob)

        # Opening the page again: how long until the conversation list can be used.
        await page.goto(web_server.url)
        await expect(page.locator(".conversation")).to_have_count(1)
        ready_ms = await page.evaluate("performance.now()")
        print(f"\nconversation list interactive {ready_ms:.0f} ms after navigation")
        await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
        # Keyboard only: Tab to the conversation, Enter opens it with the composer focused,
        # Escape goes back to the list.
        await expect(page.get_by_label("Start a chat with", exact=True)).to_be_focused()
        await page.keyboard.press("Tab")  # the Start chat button
        await page.keyboard.press("Tab")  # the conversation
        await expect(page.get_by_role("button", name="@bob")).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page.get_by_label("Message", exact=True)).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(page.get_by_role("heading", name="Chats")).to_be_visible()
        await page.get_by_role("button", name="@bob").click()

        problems: list[Any] = []
        for view in ("chat", "list"):
            if view == "list":
                await page.get_by_role("button", name="← Chats").click()
                await expect(page.locator(".conversation")).to_have_count(1)
            for size, (width, height) in SIZES.items():
                await page.set_viewport_size({"width": width, "height": height})
                for scheme in ("light", "dark"):
                    await page.emulate_media(color_scheme=scheme)
                    problems += await check(page, f"{view}-{size}-{scheme}")
        assert problems == []
