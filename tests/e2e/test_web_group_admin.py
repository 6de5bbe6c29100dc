"""Group administration in the browser client (issue 9): a browser admin and Python SDK users
on a real `porch serve`: promote and demote, rename both ways, an invite link made in the
browser and joined by a Python user, a Python user's link joined from the browser, join
requests approved and denied in the browser, the notices of all that in the group chat (kept
across a reload), and axe-core on the info screen with its admin controls."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Browser, Page, expect

from porch.client import Client
from porch.client.group_links import parse_group_link
from tests.e2e.pages import axe_context, register_in_browser, send_in_browser, watched
from tests.e2e.test_web_groups import create_in_browser, group_message, is_member, until
from tests.e2e.test_web_screens import check_all
from tests.integration.server import ServerProcess


def role(client: Client, group: str, account: str) -> str | None:
    g = client._store.get_group(group)
    return next((m.role for m in g.members if m.account_id == account), None) if g else None


def named(client: Client, group: str, name: str) -> bool:
    g = client._store.get_group(group)
    return g is not None and g.state is not None and g.state.name == name


async def notices(page: Page, *texts: str) -> None:
    """The group chat shows these notices (among others), in this order."""
    await page.get_by_role("button", name="← Chat").click()
    shown = page.locator("li.message.notice .body")
    for text in texts:
        await expect(shown.filter(has_text=text)).to_have_count(1)
    await page.get_by_role("button", name="Group info").click()


async def test_browser_admin_with_python_members(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    carol = await register_client(username="carol")
    context = await axe_context(browser)
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    async with bob, carol, watched(context) as page:
        await register_in_browser(page, web_server, "alice")
        await create_in_browser(page, "Hikers", "@bob")
        await send_in_browser(page, "hello hikers")
        gid = (await group_message(bob, "hello hikers")).group
        assert gid is not None
        await page.get_by_role("button", name="Group info").click()
        bob_row = page.locator(f'li.member[data-account="{bob.account_id}"]')
        await expect(bob_row.locator(".role")).to_have_text("Member")

        # Promote, then demote, from the browser: the Python member sees each role.
        await page.get_by_role("button", name="Make admin: @bob").click()
        await expect(bob_row.locator(".role")).to_have_text("Admin")
        await until(lambda: role(bob, gid, bob.account_id) == "admin", "bob to be an admin")
        await page.get_by_role("button", name="Remove as admin: @bob").click()
        await expect(bob_row.locator(".role")).to_have_text("Member")
        await until(lambda: role(bob, gid, bob.account_id) == "member", "bob to be a member")

        # Renamed in the browser, then by Python: both names reach the other side.
        await page.get_by_label("Group name", exact=True).fill("Summit team")
        await page.get_by_role("button", name="Rename").click()
        await expect(page.get_by_role("heading", name="Summit team")).to_be_visible()
        await until(lambda: named(bob, gid, "Summit team"), "bob to see the new name")
        await bob.groups.rename(gid, "Peak baggers")
        await expect(page.get_by_role("heading", name="Peak baggers")).to_be_visible()

        # An invite link made in the browser (text, Copy, QR), joined by a Python user.
        await page.get_by_role("button", name="Make an invite link").click()
        link_box = page.get_by_label("The link", exact=False)
        await expect(link_box).to_have_value(re.compile(r"^porch://group\?token="))
        link = await link_box.input_value()
        assert parse_group_link(link).token  # the Python client reads the browser's link
        await expect(
            page.get_by_role("img", name="QR code of the group invite link", exact=False)
        ).to_be_visible()
        await page.get_by_role("button", name="Copy").click()
        await expect(page.get_by_text("Copied")).to_be_visible()
        assert await page.evaluate("navigator.clipboard.readText()") == link
        joined = await carol.groups.join(link)
        assert joined is not None and joined.id == gid
        await expect(page.locator("li.member")).to_have_count(3)
        await until(lambda: named(carol, gid, "Peak baggers"), "carol to open the name")
        # A new link replaces the old one.
        await page.get_by_role("button", name="Make a new invite link").click()
        await expect(link_box).not_to_have_value(link)

        # Every change is a line in the chat, kept across a reload.
        expected = (
            "You made @bob an admin",
            "You made @bob a member (no longer an admin)",
            "You renamed the group to “Summit team”",
            "@bob renamed the group to “Peak baggers”",
            "@carol joined by link",
        )
        await notices(page, *expected)
        await page.reload()
        await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
        await page.get_by_role("button", name="Peak baggers").click()
        shown = page.locator("li.message.notice .body")
        for text in expected:
            await expect(shown.filter(has_text=text)).to_have_count(1)


async def test_python_link_joined_in_the_browser_and_requests_answered_there(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    carol = await register_client(username="carol")
    dave = await register_client(username="dave")
    context = await axe_context(browser)
    async with bob, carol, dave, watched(context) as page:
        await register_in_browser(page, web_server, "alice")
        alice_id = await bob.resolve("@alice")
        info = await bob.groups.create("Secret", [], join_approval=True)
        gid = info.id
        link = await bob.groups.invite(gid)

        # The browser joins by the Python user's link: a request, then Bob approves it.
        await page.get_by_role("button", name="New group").click()
        await page.get_by_label("Invite link", exact=True).fill(link)
        await page.get_by_role("button", name="Join", exact=True).click()
        await expect(page.locator(".group-join [role=status]")).to_have_text(
            "Your request to join was sent: an admin of the group has to approve it."
        )
        problems: list[Any] = await check_all(page, "group-new-join")
        await bob.groups.answer(gid, alice_id, True)
        await page.get_by_role("button", name="Cancel").click()
        await page.get_by_role("button", name="Secret").click()
        await page.get_by_role("button", name="Group info").click()
        await expect(page.locator("li.member")).to_have_count(2)
        # A member: no admin controls.
        await expect(page.get_by_role("button", name="Make admin: @bob")).to_have_count(0)
        await expect(page.get_by_role("button", name="Remove as admin: @bob")).to_have_count(0)

        # Made an admin by Bob, the browser answers the requests of two Python users.
        await bob.groups.promote(gid, alice_id)
        me_row = page.locator(f'li.member[data-account="{alice_id}"]')
        await expect(me_row.locator(".role")).to_have_text("Admin")
        assert await carol.groups.join(link) is None and await dave.groups.join(link) is None
        await page.get_by_role("button", name="← Chat").click()
        await page.get_by_role("button", name="Group info").click()  # fetched afresh
        await expect(page.locator("li.request")).to_have_count(2)
        problems += await check_all(page, "group-info-admin")
        await page.get_by_role("button", name="Approve @carol").click()
        await page.get_by_role("button", name="Deny @dave").click()
        await expect(page.locator("li.request")).to_have_count(0)
        await expect(page.locator("li.member")).to_have_count(3)
        await until(lambda: is_member(carol, gid), "carol to be let in")
        await until(lambda: named(carol, gid, "Secret"), "carol to open the name")
        await until(
            lambda: (
                dave.account_id not in (bob._store.get_group(gid) or info).pending
                and not is_member(bob, gid, dave.account_id)
            ),
            "dave's request to be gone",
        )
        # Bob's later message reaches Carol (approved), and the browser says who did what.
        await bob.wait_sent(await bob.groups.send(gid, "welcome carol"))
        assert (await group_message(carol, "welcome carol")).group == gid
        await notices(
            page,
            "@bob added you",
            "@bob made you an admin",
            "You added @carol",
            "You turned down @dave's request to join",
        )
        assert problems == []
