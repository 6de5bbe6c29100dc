"""Every screen (register, the conversation list, the chat with a real conversation in it,
contact info, settings): axe-core finds nothing serious, and nothing overflows sideways, at
desktop and 360 px phone width, in light and dark mode; and the app is usable by keyboard
alone. With PORCH_SCREENSHOTS=1 the chat and list views are saved to docs/screenshots/ (the
README shows them): `PORCH_SCREENSHOTS=1 pytest tests/e2e/test_web_screens.py`;
PORCH_SCREENSHOTS=all saves every screen."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from porch.client import Client
from tests.e2e.pages import (
    axe_context,
    next_message,
    open_chat,
    register_in_browser,
    send_in_browser,
    watched,
)
from tests.integration.conftest import next_phone
from tests.integration.server import ServerProcess

REPO = Path(__file__).resolve().parents[2]
SIZES = {"desktop": (1280, 800), "phone": (360, 740)}
README_VIEWS = ("chat", "list")  # the screenshots docs/screenshots/ keeps


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
    wanted = os.environ.get("PORCH_SCREENSHOTS")
    if wanted == "all" or (wanted and name.split("-")[0] in README_VIEWS):
        out = REPO / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=out / f"{name}.png")
    return problems


async def check_all(page: Page, view: str) -> list[str]:
    """`check` at every size, in light and dark."""
    problems = []
    for size, (width, height) in SIZES.items():
        await page.set_viewport_size({"width": width, "height": height})
        for scheme in ("light", "dark"):
            await page.emulate_media(color_scheme=scheme)
            problems += await check(page, f"{view}-{size}-{scheme}")
    await page.set_viewport_size({"width": 1280, "height": 800})
    return problems


async def test_every_screen_is_accessible_and_fit_a_phone_in_light_and_dark(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    context = await axe_context(browser)
    async with bob, watched(context) as page:
        await page.goto(web_server.url)
        await expect(
            page.get_by_role("heading", name="Register with your phone number")
        ).to_be_visible()
        problems: list[Any] = await check_all(page, "register")
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
        # Past the Start chat button to the conversation.
        await tab_to(page, "@bob")
        await expect(page.get_by_role("button", name="@bob")).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page.get_by_label("Message", exact=True)).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(page.get_by_role("heading", name="Chats")).to_be_visible()
        await page.get_by_role("button", name="@bob").click()

        problems += await check_all(page, "chat")
        await page.get_by_role("button", name="Contact info for @bob").click()
        await expect(page.locator(".digits")).to_be_visible()
        await expect(page.get_by_role("button", name="Block @bob")).to_be_visible()
        problems += await check_all(page, "contact")
        await page.keyboard.press("Escape")
        await page.get_by_role("button", name="← Chats").click()
        await page.get_by_role("button", name="Settings", exact=True).click()
        await expect(page.get_by_text("You have blocked no one.")).to_be_visible()
        await expect(page.get_by_label("Username", exact=True)).to_have_value("erin")
        await expect(page.get_by_text("Notifications are off.")).to_be_visible()
        problems += await check_all(page, "settings")
        await page.keyboard.press("Escape")
        await expect(page.locator(".conversation")).to_have_count(1)
        problems += await check_all(page, "list")
        assert problems == []


FOCUS_SHOWN = """() => {
  const el = document.activeElement;
  const style = el && getComputedStyle(el);
  return !!style && style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
}"""


FOCUSED_NAME = (
    "(document.activeElement?.getAttribute('aria-label') || document.activeElement?.textContent)"
)


async def tab_to(page: Page, name: str, back: bool = False, limit: int = 12) -> None:
    """Press Tab (Shift+Tab) until the control named `name` has the focus; each stop shows it."""
    for _ in range(limit):
        await page.keyboard.press("Shift+Tab" if back else "Tab")
        label = await page.evaluate(FOCUSED_NAME)
        assert await page.evaluate(FOCUS_SHOWN), f"no visible focus on {label!r}"
        if (label or "").strip().startswith(name):
            return
    raise AssertionError(f"{name!r} is not reachable with {'Shift+' if back else ''}Tab")


async def test_keyboard_alone_registers_starts_a_chat_sends_and_opens_every_screen(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    context = await browser.new_context()
    async with bob, watched(context) as page:
        phone = next_phone()
        await page.goto(web_server.url)
        kb = page.keyboard
        await expect(page.get_by_label("Phone number", exact=True)).to_be_focused()
        await kb.type(phone)
        await kb.press("Enter")
        await expect(page.get_by_label("Verification code", exact=True)).to_be_focused()
        await kb.type(web_server.last_code(phone))
        await kb.press("Enter")
        await expect(page.get_by_label("Device name", exact=True)).to_be_focused()
        await kb.type("keyboard")
        await kb.press("Tab")
        await expect(page.get_by_label("Username (optional)", exact=True)).to_be_focused()
        await kb.type("kim")
        await kb.press("Enter")

        # The list: the new-chat field has the focus; Enter starts the chat, Enter sends.
        await expect(page.get_by_label("Start a chat with", exact=True)).to_be_focused()
        await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
        await kb.type("@bob")
        await kb.press("Enter")
        await expect(page.get_by_label("Message", exact=True)).to_be_focused()
        await kb.type("typed, never clicked")
        await kb.press("Enter")
        assert (await next_message(bob)).text == "typed, never clicked"
        await expect(page.get_by_label("Message", exact=True)).to_have_value("")

        # Contact info from the chat header, and Escape back to the composer.
        await tab_to(page, "Contact info for @bob", back=True)
        await kb.press("Enter")
        await expect(page.get_by_role("heading", name="@bob", exact=True)).to_be_visible()
        await expect(page.get_by_role("button", name="← Chat")).to_be_focused()
        # Both parts loaded (each on its own: the safety number takes longer under load).
        await expect(page.get_by_role("button", name="Block @bob")).to_be_visible()
        await expect(page.get_by_role("button", name="Mark verified")).to_be_visible()
        await tab_to(page, "Mark verified")
        await kb.press("Escape")
        await expect(page.get_by_label("Message", exact=True)).to_be_focused()

        # Escape to the list, Shift+Tab to Settings, and Escape back.
        await kb.press("Escape")
        await expect(page.get_by_label("Start a chat with", exact=True)).to_be_focused()
        await tab_to(page, "Settings", back=True)
        await kb.press("Enter")
        await expect(page.get_by_role("heading", name="Settings")).to_be_visible()
        await expect(page.get_by_label("Username", exact=True)).to_have_value("kim")
        await tab_to(page, "Save username")
        await kb.press("Escape")
        await expect(page.get_by_label("Start a chat with", exact=True)).to_be_focused()
        # The conversation by Tab, opened with Enter.
        await tab_to(page, "@bob")
        await kb.press("Enter")
        await expect(page.get_by_label("Message", exact=True)).to_be_focused()
