"""Groups in the browser client (issue 9): a browser user and Python SDK users on a real
`porch serve`, group messages both ways over Megolm, a removal that stops delivery to the
removed member, a reload that keeps the group, and axe-core on the group screens."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, expect

from porch.client import Client, Message
from tests.e2e import browser as chromium
from tests.e2e.pages import (
    TIMEOUT_MS,
    axe_context,
    register_in_browser,
    send_in_browser,
    watched,
)
from tests.e2e.test_web_screens import check
from tests.integration.server import ServerProcess


async def group_message(client: Client, text: str, timeout: float = 20) -> Message:
    """The next group text `text` the client receives (other events are skipped)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = await client.next_event(left)
        if isinstance(event, Message) and event.text == text:
            assert event.group is not None, "a 1:1 message where a group one was expected"
            return event
    raise AssertionError(f"no group message {text!r} arrived")


async def no_message(client: Client, text: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        event = await client.next_event(left)
        assert not (isinstance(event, Message) and event.text == text), f"{text!r} arrived"


async def until(check_: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check_():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def is_member(client: Client, group: str, account: str | None = None) -> bool:
    account = account or client.account_id
    return any(m.account_id == account for m in client._store.group_members(group))


async def create_in_browser(page: Page, name: str, members: str) -> None:
    """By keyboard alone: the form opens with the name focused, Tab to the members, Enter."""
    await page.get_by_role("button", name="New group").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Group name", exact=True)).to_be_focused()
    await page.keyboard.type(name)
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Members", exact=False)).to_be_focused()
    await page.keyboard.type(members)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name=name)).to_be_visible()
    await expect(page.get_by_label("Message", exact=True)).to_be_focused()


async def test_browser_group_with_python_members_both_ways_removal_and_reload(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    carol = await register_client(username="carol")
    context = await axe_context(browser)
    async with bob, carol, watched(context) as page:
        await register_in_browser(page, web_server, "alice")
        alice_id = await bob.resolve("@alice")

        # The browser creates the group; both Python members read its first message.
        await create_in_browser(page, "Climbers", "@bob, @carol")
        await send_in_browser(page, "hello group")
        got = await group_message(bob, "hello group")
        assert got.sender == alice_id
        gid = got.group
        assert gid is not None
        assert (await group_message(carol, "hello group")).group == gid
        # The sealed state opened on the Python side: the name came with the state key.
        await until(
            lambda: (
                (g := bob._store.get_group(gid)) is not None
                and g.state is not None
                and g.state.name == "Climbers"
            ),
            "bob to open the group's name",
        )

        # Python -> browser: shown with its sender's label.
        await bob.wait_sent(await bob.groups.send(gid, "hi from bob"))
        incoming = page.locator("li.message.in:not(.notice)")
        await expect(incoming.locator(".body")).to_have_text(["hi from bob"])
        await expect(incoming.locator(".author")).to_have_text(["@bob"])

        # axe-core on the group chat, the group info panel and the new-group form.
        problems: list[Any] = []
        problems += await check(page, "group-chat")
        await page.get_by_role("button", name="Group info").click()
        await expect(page.get_by_role("heading", name="Climbers")).to_be_visible()
        await expect(page.locator("li.member")).to_have_count(3)
        problems += await check(page, "group-info")

        # Carol removed from the browser: the next message reaches Bob, never Carol.
        await page.get_by_role("button", name="Remove @carol from the group").click()
        await expect(page.locator("li.member")).to_have_count(2)
        await until(lambda: not is_member(bob, gid, carol.account_id), "bob to see the removal")
        await page.get_by_role("button", name="← Chat").click()
        await send_in_browser(page, "after removal")
        assert (await group_message(bob, "after removal")).group == gid
        await no_message(carol, "after removal", 3)
        stored = {m.text for m in carol.history(f"g:{gid}")}
        assert "hello group" in stored and "after removal" not in stored

        # A reload keeps the group, its name and its history; sending goes on.
        await page.reload()
        await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
        await page.get_by_role("button", name="Climbers").click()
        bodies = page.locator("li.message:not(.notice) .body")
        await expect(bodies).to_have_text(["hello group", "hi from bob", "after removal"])
        await send_in_browser(page, "after the reload")
        assert (await group_message(bob, "after the reload")).group == gid
        await bob.wait_sent(await bob.groups.send(gid, "bob after the reload"))
        await expect(bodies.last).to_have_text("bob after the reload")

        await page.get_by_role("button", name="← Chats").click()
        await expect(page.get_by_role("button", name="Climbers")).to_be_visible()
        # The list shows a group's last message and its unread count.
        await bob.wait_sent(await bob.groups.send(gid, "while you look at the list"))
        row = page.locator(f'.conversation[data-peer="g:{gid}"]')
        await expect(row.locator(".preview")).to_have_text("while you look at the list")
        await expect(row.locator(".unread")).to_have_text("1")
        problems += await check(page, "list-with-group")
        await page.get_by_role("button", name="New group").click()
        await expect(page.get_by_label("Group name", exact=True)).to_be_focused()
        problems += await check(page, "group-new")
        assert problems == []


async def test_python_creates_a_group_with_the_browser_as_member(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    context = await browser.new_context()
    async with bob, watched(context) as page:
        await register_in_browser(page, web_server, "dora")
        dora_id = await bob.resolve("@dora")
        info = await bob.groups.create("Book club", [dora_id])
        await bob.wait_sent(await bob.groups.send(info.id, "welcome, dora"))

        # The group shows in the list by its (sealed) name once its state key came.
        await page.get_by_role("button", name="Book club").click()
        texts = page.locator("li.message.in:not(.notice) .body")  # not the group's notices
        await expect(texts).to_have_text(["welcome, dora"])
        await expect(page.locator("li.message.in:not(.notice) .author")).to_have_text(["@bob"])
        await send_in_browser(page, "thanks, bob")
        got = await group_message(bob, "thanks, bob")
        assert (got.sender, got.group) == (dora_id, info.id)

        # The browser adds Erin (members may edit by default): she opens the name and reads
        # what follows, never what came before.
        erin = await register_client(username="erin")
        async with erin:
            await page.get_by_role("button", name="Group info").click()
            await page.get_by_label("Add members", exact=True).fill("@erin")
            await page.get_by_role("button", name="Add", exact=True).click()
            await expect(page.locator("li.member")).to_have_count(3)
            await page.get_by_role("button", name="← Chat").click()
            await send_in_browser(page, "meet erin")
            assert (await group_message(erin, "meet erin")).group == info.id
            await until(
                lambda: (
                    (g := erin._store.get_group(info.id)) is not None
                    and g.state is not None
                    and g.state.name == "Book club"
                ),
                "erin to open the group's name",
            )
            assert {m.text for m in erin.history(f"g:{info.id}")} == {"meet erin"}

        # The browser leaves: Bob's later messages no longer reach it.
        await page.get_by_role("button", name="Group info").click()
        await page.get_by_role("button", name="Leave group").click()
        await expect(page.get_by_role("heading", name="Chats")).to_be_visible()
        await until(lambda: not is_member(bob, info.id, dora_id), "bob to see dora leave", 20)


@contextlib.asynccontextmanager
async def watched_but_404(context: BrowserContext) -> AsyncIterator[Page]:
    """As pages.watched, but a removed member's fetch of its group is answered 404 (the
    server answers alike for a group one is not in), which Chromium logs as a console error:
    that one line is expected here, nothing else is."""
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    seen = await chromium.watch(page)
    yield page
    problems = [p for p in seen.problems() if "WebSocket" not in p and "404 (Not Found)" not in p]
    assert problems == [], problems


async def test_python_removes_the_browser_which_then_gets_nothing_more(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    carol = await register_client(username="carol")
    context = await browser.new_context()
    async with bob, carol, watched_but_404(context) as page:
        await register_in_browser(page, web_server, "eve")
        eve_id = await bob.resolve("@eve")
        info = await bob.groups.create("Choir", [eve_id, carol.account_id])
        await bob.wait_sent(await bob.groups.send(info.id, "first practice"))
        await page.get_by_role("button", name="Choir").click()
        texts = page.locator("li.message.in:not(.notice) .body")  # not the group's notices
        await expect(texts).to_have_text(["first practice"])

        await bob.groups.remove(info.id, eve_id)
        await page.get_by_role("button", name="Group info").click()
        await expect(page.get_by_text("You are no longer a member of this group.")).to_be_visible()
        await expect(page.get_by_role("button", name="Leave group")).to_have_count(0)
        await bob.wait_sent(await bob.groups.send(info.id, "without eve"))
        assert (await group_message(carol, "without eve")).group == info.id
        await page.get_by_role("button", name="← Chat").click()
        await asyncio.sleep(2)
        await expect(page.locator("li.message:not(.notice) .body")).to_have_text(["first practice"])
