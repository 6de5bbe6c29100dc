"""Group settings and turning the invite link off in the browser (web/src/ui/group_settings.ts,
net/group_settings.ts) against a real `porch serve` with Python SDK users.

A browser admin: join approval on holds a Python user's link join for approval (approved in
the browser); members_can_edit off makes the server refuse a Python member's rename; "Turn off
invite link" (after its question) makes the old link's join fail with `not_found` and the panel
say there is no link. A browser member: the settings are read-only, a rename the server refuses
is a sentence, and an SDK admin's change reaches it as a notice line. axe-core on each state.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from porch.client import Client
from porch.client.errors import ServerError
from porch.client.group_api import GroupApi
from porch.crypto.group_state import GroupSettings
from tests.e2e import browser as chromium
from tests.e2e.pages import (
    TIMEOUT_MS,
    axe_context,
    register_in_browser,
    send_in_browser,
    watched,
)
from tests.e2e.test_web_group_admin import named, notices
from tests.e2e.test_web_groups import create_in_browser, group_message, is_member, until
from tests.e2e.test_web_screens import check_all
from tests.integration.server import ServerProcess

EDIT = "Members can edit the group info"
APPROVE = "Admins approve new members"


def settings_of(client: Client, gid: str) -> tuple[GroupSettings, GroupSettings] | None:
    """The server's copy and the sealed state's, as this SDK user last fetched them."""
    g = client._store.get_group(gid)
    return (g.settings, g.state.settings) if g is not None and g.state is not None else None


def both(settings: GroupSettings) -> tuple[GroupSettings, GroupSettings]:
    return settings, settings


async def test_browser_admin_changes_settings_and_turns_the_link_off(
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
        await create_in_browser(page, "Hikers", "@bob")
        await send_in_browser(page, "hello hikers")
        gid = (await group_message(bob, "hello hikers")).group
        assert gid is not None
        await page.get_by_role("button", name="Group info").click()
        edit, approve = page.get_by_label(EDIT, exact=True), page.get_by_label(APPROVE, exact=True)
        await expect(edit).to_be_checked()
        await expect(edit).to_be_enabled()
        await expect(approve).not_to_be_checked()
        await expect(page.locator("#invite-none")).to_have_text(
            "No invite link: nobody can join by link now."
        )
        problems: list[Any] = await check_all(page, "group-settings-admin")

        # Join approval on, by keyboard: both copies change for the Python member.
        await approve.focus()
        await page.keyboard.press("Space")
        await expect(approve).to_be_checked()
        await until(
            lambda: settings_of(bob, gid) == both(GroupSettings(True, True)),
            "bob to hold join approval on",
        )
        # A Python user joining by the browser's link is held for approval, then let in.
        await page.get_by_role("button", name="Make an invite link").click()
        link = await page.get_by_label("The link", exact=False).input_value()
        assert await carol.groups.join(link) is None
        await page.get_by_role("button", name="Approve @carol").click()
        await until(lambda: is_member(carol, gid), "carol to be let in")

        # Only admins edit: the server refuses the Python member's rename, in words.
        await edit.click()
        await expect(edit).not_to_be_checked()
        await until(
            lambda: settings_of(bob, gid) == both(GroupSettings(False, True)),
            "bob to see that only admins edit",
        )
        with pytest.raises(ServerError) as refused:
            await bob.groups.rename(gid, "Bob's hikers")
        assert refused.value.code == "forbidden"
        assert "only admins can change the name" in str(refused.value)

        # Turn off invite link: asked first; "Keep it" keeps it.
        await page.get_by_role("button", name="Turn off invite link").click()
        question = page.get_by_role("group", name="Turn the invite link off?", exact=False)
        await expect(question).to_be_visible()
        await expect(page.get_by_role("button", name="Turn it off")).to_be_focused()
        problems += await check_all(page, "group-settings-revoke-question")
        await page.get_by_role("button", name="Keep it").click()
        await expect(page.get_by_role("button", name="Turn off invite link")).to_be_focused()
        await page.get_by_role("button", name="Turn off invite link").click()
        await page.get_by_role("button", name="Turn it off").click()
        await expect(page.locator("#invite-none")).to_be_visible()
        await expect(page.get_by_label("The link", exact=False)).to_have_count(0)
        with pytest.raises(ServerError) as gone:
            await dave.groups.join(link)
        assert gone.value.code == "not_found"
        assert not is_member(dave, gid)
        problems += await check_all(page, "group-settings-no-link")

        await notices(
            page,
            "You changed the group's settings: admins approve new members",
            "You added @carol",
            "You changed the group's settings: only admins edit the group info",
        )
        assert problems == []


@contextlib.asynccontextmanager
async def watched_but_403(context: BrowserContext) -> AsyncIterator[Page]:
    """As pages.watched, but the refused rename's 403, which Chromium logs as a console error,
    is expected here (nothing else is)."""
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    seen = await chromium.watch(page)
    yield page
    problems = [p for p in seen.problems() if "WebSocket" not in p and "403 (Forbidden)" not in p]
    assert problems == [], problems


def dropping_group_changed(route: WebSocketRoute) -> None:
    """The page's real socket to the server, less the server's `group_changed` hints: the
    browser then learns of a change only from the members' own updates, so a view that the
    server has moved past stays on screen (a change it makes is refused by the server)."""
    server = route.connect_to_server()

    def from_server(message: str | bytes) -> None:
        if isinstance(message, str) and '"type":"group_changed"' in message.replace(" ", ""):
            return
        route.send(message)

    server.on_message(from_server)
    route.on_message(server.send)


async def test_browser_member_sees_settings_read_only_and_is_refused_in_words(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    context = await axe_context(browser)
    async with bob, watched_but_403(context) as page:
        await page.route_web_socket(re.compile(r"/v1/ws"), dropping_group_changed)
        await register_in_browser(page, web_server, "erin")
        erin_id = await bob.resolve("@erin")
        info = await bob.groups.create("Book club", [erin_id])
        gid = info.id
        await bob.wait_sent(await bob.groups.send(gid, "welcome, erin"))
        await page.get_by_role("button", name="Book club").click()
        await page.get_by_role("button", name="Group info").click()
        edit, approve = page.get_by_label(EDIT, exact=True), page.get_by_label(APPROVE, exact=True)
        await expect(edit).to_be_checked()
        await expect(edit).to_be_disabled()
        await expect(approve).to_be_disabled()
        await expect(page.get_by_text("Only admins change these settings.")).to_be_visible()
        problems: list[Any] = await check_all(page, "group-settings-member")

        # The server's copy changed behind this page's back (no update told, the hint
        # dropped): the rename form is still there, and the server refuses it in a sentence.
        rev = (await GroupApi(bob.api).get(gid)).revision
        await GroupApi(bob.api).put_settings(gid, rev, GroupSettings(False, False))
        await page.get_by_label("Group name", exact=True).fill("Erin's club")
        await page.get_by_role("button", name="Rename").click()
        await expect(page.get_by_role("alert")).to_have_text(
            "Only admins can change this group's name: its settings do not let members edit "
            "the group info; ask an admin."
        )
        # Drawn again from what the refusal fetched: no rename form, the setting shown off.
        await expect(page.get_by_role("button", name="Rename")).to_have_count(0)
        await expect(edit).not_to_be_checked()
        assert named(bob, gid, "Book club")

        # The SDK admin's own change (the sealed copy put in step, one update told) reaches
        # the browser as a notice line and as the checkbox.
        await bob.groups.set_settings(gid, join_approval=True)
        await bob.flush()
        await expect(approve).to_be_checked()
        await expect(approve).to_be_disabled()
        problems += await check_all(page, "group-settings-member-approval")
        # Against the sealed copy it held (the server-only change above was never sealed).
        await notices(
            page,
            "@bob changed the group's settings: only admins edit the group info and admins "
            "approve new members",
        )
        assert problems == []
