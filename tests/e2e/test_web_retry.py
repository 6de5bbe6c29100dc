"""Retry requests between the browser and the SDK (web/src/core/retry.ts; docs/design.md,
"Healing decryption failures (retry requests)"): a lost Olm session on either side is healed
by a `retry` content and a resend, and the text shows once.

Sender side: the SDK user loses its session with the browser (its sessions rows deleted, as
a profile restored from an older copy would lack them); the browser answers the SDK's request
and resends. Receiver side: the browser loses its session with the SDK device (its IndexedDB
row deleted, then a reload); the browser asks and the SDK resends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable

from playwright.async_api import Browser, Page, expect

from porch.client import Client, DecryptionFailed, Message, ReceiptEvent
from tests.e2e.pages import axe_context, open_chat, register_in_browser, send_in_browser, watched
from tests.e2e.test_web_group_live import wait_for
from tests.e2e.test_web_screens import check
from tests.integration.server import ServerProcess
from tests.integration.test_rereg import events_until_message

# Delete one row of the app's IndexedDB `sessions` store ("account/device" -> sealed pickle);
# the count of rows with that key left, to check it went.
DROP_SESSION = """async (key) => {
  const db = await new Promise((ok, bad) => {
    const r = indexedDB.open("porch");
    r.onsuccess = () => ok(r.result);
    r.onerror = () => bad(r.error);
  });
  await new Promise((ok, bad) => {
    const tx = db.transaction("sessions", "readwrite");
    tx.objectStore("sessions").delete(key);
    tx.oncomplete = ok;
    tx.onerror = () => bad(tx.error);
  });
  const left = await new Promise((ok) => {
    const r = db.transaction("sessions").objectStore("sessions").count(key);
    r.onsuccess = () => ok(r.result);
  });
  db.close();
  return left;
}"""


async def no_more_messages(client: Client, text: str) -> None:
    """Nothing else with this text comes: the resend is shown once."""
    while (event := await client.next_event(2.0)) is not None:
        assert not (isinstance(event, Message) and event.text == text), event


async def test_a_lost_session_heals_both_ways_between_browser_and_sdk(
    browser: Browser,
    web_server: ServerProcess,
    register_client: Callable[..., Awaitable[Client]],
) -> None:
    bob = await register_client(username="bob")
    context = await axe_context(browser)
    async with watched(context) as page:
        await register_in_browser(page, web_server, "alice")
        async with bob:
            alice_id = await bob.resolve("@alice")
            # A confirmed session both ways: the browser writes first, Bob answers.
            await open_chat(page, "@bob")
            await send_in_browser(page, "hello bob")
            await events_until_message(bob, "hello bob")
            await bob.send_text("@alice", "hello alice")
            await expect(page.locator("li.message.in .body")).to_have_text("hello alice")
            assert await bob.flush()
        # Bob loses his sessions with the browser (a profile restored from an older copy).
        with sqlite3.connect(bob.profile_dir / "client.db") as db:
            db.execute("DELETE FROM sessions WHERE account_id = ?", (alice_id,))
        bob = Client(bob.profile_dir)
        async with bob:
            await sender_side(page, bob, alice_id)
            await receiver_side(page, bob, alice_id)


async def sender_side(page: Page, bob: Client, alice_id: str) -> None:
    """The browser's text does not decrypt at Bob's: he asks, the browser resends it."""
    await send_in_browser(page, "did you get this?")
    events = await events_until_message(bob, "did you get this?", timeout=30)
    # The browser's typing frames and receipts on the old session failed too; Bob asked for
    # each (well inside 10 an hour), and the browser resent only the text.
    failed = [e for e in events if isinstance(e, DecryptionFailed)]
    assert failed and all(e.retry_requested for e in failed), events
    await no_more_messages(bob, "did you get this?")
    history = bob.history(alice_id)
    texts = [m.text for m in history if not m.outgoing and m.status != "undecryptable"]
    assert texts == ["hello bob", "did you get this?"]
    placeholders = [m for m in history if m.status == "undecryptable"]
    assert len(placeholders) == len(failed)
    assert all("asked them to resend" in m.text for m in placeholders)
    # One bubble in the browser, ticked by Bob's receipt for the resend (same message id).
    mine = page.locator("li.message.out", has_text="did you get this?")
    await expect(mine).to_have_count(1)
    await expect(mine).to_have_attribute("data-status", "delivered")
    # The healed session carries Bob's answer, and the browser's read receipt for it.
    answer = await bob.send_text(alice_id, "yes, now I did")
    await expect(page.locator("li.message.in .body").last).to_have_text("yes, now I did")
    await wait_for(
        bob,
        lambda e: isinstance(e, ReceiptEvent) and e.kind == "read" and answer.id in e.ids,
        "the browser's read receipt",
    )


async def receiver_side(page: Page, bob: Client, alice_id: str) -> None:
    """The browser loses its session with Bob's device: it asks, Bob resends."""
    # Nothing of the browser's waits to go (the read receipt came), so no commit writes the
    # session back between the delete and the reload.
    left = await page.evaluate(DROP_SESSION, f"{bob.account_id}/{bob.device_id}")
    assert left == 0
    await page.reload()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
    await page.get_by_role("button", name="@bob").click()
    await bob.send_text(alice_id, "are you there?")
    incoming = page.locator("li.message.in .body", has_text="are you there?")
    await expect(incoming).to_have_count(1, timeout=30_000)
    placeholder = page.locator("li.message.in.undecryptable .body")
    await expect(placeholder).to_have_text(
        "A message could not be decrypted; asked them to resend."
    )
    assert await check(page, "chat-retry-placeholder") == []
    # Shown once: no second bubble after a while, and the conversation goes on both ways.
    await page.wait_for_timeout(2000)
    await expect(incoming).to_have_count(1)
    await send_in_browser(page, "here I am")
    await events_until_message(bob, "here I am")
    await bob.send_text(alice_id, "good")
    await expect(page.locator("li.message.in .body").last).to_have_text("good")
