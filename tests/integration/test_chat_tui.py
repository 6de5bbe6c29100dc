"""`porch chat` driven headless with Textual's pilot, against a real server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from textual.widgets import Input

from porch.client import Client, Message
from porch.tui import ChatApp
from porch.tui.app import RecipientScreen
from tests.integration.conftest import next_phone, register
from tests.integration.test_rereg import converse

TIMEOUT = 10.0


async def eventually(check: Callable[[], bool], pause: Callable[[], Awaitable[None]]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if check():
            return
        await pause()
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met within the timeout")


async def next_message(client: Client) -> Message:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        event = await client.next_event(deadline - time.monotonic())
        if isinstance(event, Message):
            return event
    raise AssertionError("no message arrived")


def line_with(app: ChatApp, text: str) -> str:
    return next((line for line in app.history_lines if text in line), "")


async def test_chat_send_receive_ticks_and_typing(register_client) -> None:  # type: ignore[no-untyped-def]
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    async with alice, bob:
        await alice.wait_connected(TIMEOUT)
        await bob.wait_connected(TIMEOUT)
        app = ChatApp(alice)
        async with app.run_test(size=(100, 30)) as pilot:
            # Start a conversation the way a user would: /to in the composer.
            composer = app.query_one("#composer", Input)
            composer.value = "/to @bob"
            await pilot.press("enter")
            await eventually(lambda: app.peer is not None, pilot.pause)
            assert app.peer == bob.account_id
            await pilot.press(*"hi bob")
            assert composer.value == "hi bob"
            await pilot.press("enter")
            assert composer.value == ""

            received = await next_message(bob)
            assert received.text == "hi bob"
            assert received.sender == alice.account_id

            # Bob's client sent a delivery receipt on its own: Alice sees ✓✓.
            await eventually(lambda: "✓✓" in line_with(app, "hi bob"), pilot.pause)

            await bob.send_text(alice.account_id, "hello alice", wait=True)
            await eventually(lambda: bool(line_with(app, "hello alice")), pilot.pause)
            # The conversation is open, so the app marked the reply read (no unread badge).
            await eventually(lambda: all(c.unread == 0 for c in alice.conversations()), pilot.pause)

            # Sessions exist both ways now: typing indicators flow.
            deadline = time.monotonic() + TIMEOUT
            while not await bob.set_typing(alice.account_id, True):
                assert time.monotonic() < deadline, "bob could not send a typing indicator"
                await asyncio.sleep(0.2)
            await eventually(lambda: app.typing_shown, pilot.pause)
            assert "is typing" in str(app.query_one("#typing").render())
            await bob.set_typing(alice.account_id, False)
            await eventually(lambda: not app.typing_shown, pilot.pause)


async def test_chat_unknown_recipient_notifies(register_client) -> None:  # type: ignore[no-untyped-def]
    alice = await register_client(username="alice")
    async with alice:
        app = ChatApp(alice)
        async with app.run_test(size=(100, 30)) as pilot:
            app.query_one("#composer", Input).value = "/to @nobody"
            await pilot.press("enter")
            await eventually(lambda: bool(app._notifications), pilot.pause)
            assert app.peer is None
            # Sending with no conversation open warns instead of crashing.
            app.query_one("#composer", Input).value = "hello?"
            await pilot.press("enter")
            await pilot.pause()
            assert app.is_running
            # ctrl+n asks whom to talk to; escape cancels.
            await pilot.press("ctrl+n")
            await eventually(lambda: isinstance(app.screen, RecipientScreen), pilot.pause)
            await pilot.press("escape")
            await eventually(lambda: not isinstance(app.screen, RecipientScreen), pilot.pause)


async def test_chat_shows_a_changed_safety_number_inline(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    phone = next_phone()
    alice = await register(server, tmp_path / "alice")
    carol_old = await register(server, tmp_path / "carol-old", phone)
    async with alice, carol_old:
        await converse(alice, carol_old)
    carol = await register(server, tmp_path / "carol-new", phone)  # a new phone
    async with alice, carol:
        await alice.wait_connected(TIMEOUT)
        app = ChatApp(alice)
        async with app.run_test(size=(120, 30)) as pilot:
            app.query_one("#composer", Input).value = f"/to {carol.account_id}"
            await pilot.press("enter")
            await eventually(lambda: app.peer == carol.account_id, pilot.pause)
            await carol.send_text(alice.account_id, "new phone, same carol")
            await eventually(lambda: bool(line_with(app, "new phone, same carol")), pilot.pause)
            await eventually(lambda: bool(line_with(app, "! The safety number with")), pilot.pause)
            lines = app.history_lines
            assert lines.index(line_with(app, "! The safety number")) < lines.index(
                line_with(app, "new phone, same carol")
            )


async def test_chat_shows_verification_and_a_paused_send(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import Static

    from porch.tui.app import PAUSED_LINE

    def title(app: ChatApp) -> str:
        return str(app.query_one("#peer-title", Static).render())

    phone = next_phone()
    alice = await register(server, tmp_path / "alice")
    carol_old = await register(server, tmp_path / "carol-old", phone)
    async with alice, carol_old:
        await converse(alice, carol_old)
        ident = await alice.identity(carol_old.account_id)
        await alice.mark_verified(carol_old.account_id, ident.master_key)
        app = ChatApp(alice, open_to=carol_old.account_id)
        async with app.run_test(size=(140, 30)) as pilot:
            await eventually(lambda: "✓ verified" in title(app), pilot.pause)
    carol = await register(server, tmp_path / "carol-new", phone)  # a new phone
    async with alice, carol:
        await alice.wait_connected(TIMEOUT)
        app = ChatApp(alice, open_to=carol.account_id)
        async with app.run_test(size=(140, 30)) as pilot:
            await eventually(lambda: app.peer == carol.account_id, pilot.pause)
            app.query_one("#composer", Input).focus()
            await pilot.press(*"still you?", "enter")
            # The stale session, then the claim, show the new key: the send waits.
            await eventually(lambda: PAUSED_LINE in line_with(app, "still you?"), pilot.pause)
            await eventually(lambda: "safety number changed" in title(app), pilot.pause)
            assert await alice.accept_identity(carol.account_id) == 1
            received = await next_message(carol)
            assert received.text == "still you?"


async def test_chat_names_senders_and_marks_what_it_shows(register_client) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_profiles import porch

    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    async with alice, bob:
        await alice.wait_connected(TIMEOUT)
        app = ChatApp(alice)
        async with app.run_test(size=(100, 30)) as pilot:
            await bob.send_text(alice.account_id, "who am i", wait=True)  # alice never met @bob
            await eventually(lambda: bool(line_with(app, "who am i")), pilot.pause)
            # The server told the chat bob's name when it first saw him: no hex id.
            assert "@bob" in str(app.query_one("#peer-title").render())
            # Shown on the chat's screen, so `porch recv` next to it has nothing to print.
            code, out, err = await porch(alice.profile_dir, "recv", "--wait", "1")
            assert (code, out) == (0, ""), err
            await bob.send_text(alice.account_id, "and this one", wait=True)
            await eventually(lambda: bool(line_with(app, "and this one")), pilot.pause)
            assert app.client.connected  # the recv did not replace the chat's connection


async def test_chat_says_why_it_cannot_connect(register_client) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.server import free_port

    alice = await register_client()
    await alice.aclose()
    elsewhere = Client(alice.profile_dir, server=f"http://127.0.0.1:{free_port()}")
    async with elsewhere:
        app = ChatApp(elsewhere)
        async with app.run_test(size=(120, 30)) as pilot:
            # Not only "connecting…" forever: the reason, as `porch send` gives it.
            await eventually(lambda: "cannot connect" in str(app.sub_title), pilot.pause)
            assert "connecting…" in str(app.sub_title)
