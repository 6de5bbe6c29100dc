"""Live group chats in the browser client (issue 9): typing, ticks and the disappearing timer
between a browser member and Python SDK members of one group, on a real `porch serve`.

Both directions: each side sees the other's typing; the browser's own message gets its
delivered tick once every Python member's client answered and its read tick once every one
marked it read, and a Python author gets the browser's delivery and read receipts; a timer set
by Python expires messages in the browser (screen and IndexedDB), one set in the browser
expires them on the Python side. axe-core runs on the group chat with all of it shown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from porch.client import Client, ReceiptEvent, TimerChanged, TypingEvent
from porch.client.events import Event
from tests.e2e.pages import axe_context, register_in_browser, send_in_browser, watched
from tests.e2e.test_web_groups import group_message, until
from tests.e2e.test_web_screens import check
from tests.integration.server import ServerProcess

# How many rows of IndexedDB's `messages` store hold a client id (row keys are
# "peer|direction|client id"; the bodies are sealed, the keys are not).
COUNT_ROWS = """async (cid) => {
  let n = 0;
  for (const { name } of await indexedDB.databases()) {
    const db = await new Promise((ok, bad) => {
      const r = indexedDB.open(name);
      r.onsuccess = () => ok(r.result);
      r.onerror = () => bad(r.error);
    });
    if (db.objectStoreNames.contains("messages")) {
      const keys = await new Promise((ok) => {
        const r = db.transaction("messages").objectStore("messages").getAllKeys();
        r.onsuccess = () => ok(r.result);
      });
      n += keys.filter((k) => String(k).endsWith("|" + cid)).length;
    }
    db.close();
  }
  return n;
}"""


async def wait_for(
    client: Client, match: Callable[[Event], bool], what: str, timeout: float = 20
) -> Event:
    """The next event `match` accepts (others are skipped)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = await client.next_event(left)
        if event is not None and match(event):
            return event
    raise AssertionError(f"timed out waiting for {what}")


async def rows_of(page: Page, client_id: str) -> int:
    return int(await page.evaluate(COUNT_ROWS, client_id))


async def test_typing_ticks_and_timers_between_browser_and_python_members(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
    tmp_path: Path,
) -> None:
    bob = await register_client(username="bob")
    carol = await register_client(username="carol")
    context = await axe_context(browser)
    async with bob, carol, watched(context) as page:
        await register_in_browser(page, web_server, "alice")
        alice_id = await bob.resolve("@alice")
        carol_id = await bob.resolve("@carol")
        info = await bob.groups.create("Crag", [alice_id, carol_id])
        gid, peer = info.id, f"g:{info.id}"
        await bob.wait_sent(await bob.groups.send(gid, "welcome"))
        await group_message(carol, "welcome")
        await carol.wait_sent(await carol.groups.send(gid, "hi all"))

        await page.get_by_role("button", name="Crag").click()
        bodies = page.locator("li.message:not(.notice) .body")
        await expect(bodies).to_have_text(["welcome", "hi all"])

        # Python -> browser typing: one name, then two, then one again.
        typing = page.locator(".chat .typing")
        assert await bob.set_typing(peer, True)
        await expect(typing).to_have_text("@bob is typing…")
        assert await carol.set_typing(peer, True)
        await expect(typing).to_have_text("@bob and @carol are typing…")
        assert await bob.set_typing(peer, False)
        await expect(typing).to_have_text("@carol is typing…")
        # A text from a typer ends that typer's indicator.
        await carol.wait_sent(await carol.groups.send(gid, "typed it"))
        await expect(bodies.last).to_have_text("typed it")
        await expect(typing).to_have_text("")

        # The browser's own message: delivered once both Python clients answered, read once
        # both marked it read (the receipts go 1:1 to the author).
        await send_in_browser(page, "ticks please")
        got_bob = await group_message(bob, "ticks please")
        await group_message(carol, "ticks please")
        mine = page.locator("li.message.out").last
        await expect(mine).to_have_attribute("data-status", "delivered")
        await bob.mark_read(peer, [got_bob.id])
        assert await bob.flush(timeout=10)  # Bob's read receipt is with the server
        await page.wait_for_timeout(1000)
        assert await mine.get_attribute("data-status") == "delivered"  # Carol has not read it
        await carol.mark_read(peer, [got_bob.id])
        await expect(mine).to_have_attribute("data-status", "read")

        # Browser -> Python typing (its session is with every member device now).
        await page.get_by_label("Message", exact=True).press_sequentially("abc")
        typed = await wait_for(
            bob,
            lambda e: isinstance(e, TypingEvent) and e.sender == alice_id and e.started,
            "the browser's typing",
        )
        assert isinstance(typed, TypingEvent) and typed.group == gid
        await page.get_by_label("Message", exact=True).fill("")

        # A Python author gets the browser's receipts: delivered at once, read as the chat
        # shows it.
        await bob.wait_sent(await bob.groups.send(gid, "did you get this?"))
        await expect(bodies.last).to_have_text("did you get this?")
        theirs = next(m for m in bob.history(peer) if m.text == "did you get this?")
        kinds: set[str] = set()  # either may come first: the read one goes as it is shown
        deadline = time.monotonic() + 20
        while kinds != {"delivered", "read"}:
            event = await bob.next_event(max(deadline - time.monotonic(), 0.01))
            assert time.monotonic() < deadline, f"only {kinds} receipts from the browser"
            if (
                isinstance(event, ReceiptEvent)
                and event.sender == alice_id
                and theirs.client_id in event.ids
            ):
                kinds.add(event.kind)

        # A timer set by Python: the notice line, the select shows it, and a message sent
        # after it goes from the screen and from IndexedDB when its time comes.
        await bob.set_timer(peer, 5)
        await expect(page.locator("li.message").last).to_contain_text(
            "@bob set disappearing messages to 5 seconds"
        )
        await expect(page.get_by_label("Disappearing messages")).to_have_value("5")
        sent = await bob.groups.send(gid, "gone in five")
        await bob.wait_sent(sent)
        vanishing = page.locator("li.message", has_text="gone in five")
        await expect(vanishing).to_have_count(1)
        await expect(vanishing.locator(".expires")).to_be_visible()
        problems: list[Any] = await check(page, "group-chat-live")
        # A 360 px phone: the header (back, name, timer, group info) fits without a sideways
        # scroll.
        await page.set_viewport_size({"width": 360, "height": 740})
        await page.screenshot(path=str(tmp_path / "group-live-phone.png"))
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        await page.set_viewport_size({"width": 1280, "height": 800})
        assert await rows_of(page, sent) == 1
        await expect(vanishing).to_have_count(0, timeout=15_000)
        await until_rows(page, sent, 0)

        # A timer set in the browser: the Python members apply it to what the browser sends.
        await page.get_by_label("Disappearing messages").select_option("30")
        changed = await wait_for(
            bob,
            lambda e: isinstance(e, TimerChanged) and e.peer == peer and e.seconds == 30,
            "the browser's timer",
        )
        # (`by` is "" when the server's group_changed hint beat the browser's update: the SDK
        # names a changer only from an update it had before the fetch, as between two SDKs.)
        assert isinstance(changed, TimerChanged) and changed.by in ("", alice_id)
        await expect(page.locator("li.message").last).to_contain_text(
            "You set disappearing messages to 30 seconds"
        )
        await until(lambda: bob.timer_of(peer) == 30, "bob to see the 30 second timer")
        await send_in_browser(page, "gone in thirty")
        got = await group_message(bob, "gone in thirty")
        row = next(m for m in bob.history(peer) if m.client_id == got.id)
        assert row.expires_at is not None
        assert 29_000 <= row.expires_at - got.ts <= 31_000
        await until(
            lambda: any(
                m.status == "notice" and m.text.endswith("set disappearing messages to 30 seconds")
                for m in carol.history(peer)
            ),
            "carol's notice line",
        )
        # Expired on the Python side when its time comes (the SDK's sweep, run here).
        deadline = time.monotonic() + 45
        while any(m.client_id == got.id for m in bob.history(peer)):
            assert time.monotonic() < deadline, "the browser's disappearing message stayed"
            bob.expire_now()
            await asyncio.sleep(0.5)
        assert problems == []


async def until_rows(page: Page, client_id: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while await rows_of(page, client_id) != count:
        assert time.monotonic() < deadline, f"IndexedDB still holds {client_id}"
        await page.wait_for_timeout(200)
