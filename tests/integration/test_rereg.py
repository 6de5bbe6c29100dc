"""Decryption failures heal: refetched keys after a re-registration, retry requests otherwise."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from porch.client import Client, DecryptionFailed, Event, IdentityChanged, Message
from tests.integration.conftest import next_phone, register
from tests.integration.server import ServerProcess


async def events_until_message(client: Client, text: str, timeout: float = 15) -> list[Event]:
    """Every event up to and including the message with this text (fails if it never comes)."""
    seen: list[Event] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"{text!r} never arrived; events: {seen}"
        event = await client.next_event(left)
        if event is None:
            continue
        seen.append(event)
        if isinstance(event, Message) and event.text == text:
            return seen


async def converse(alice: Client, carol: Client) -> None:
    """Carol writes first, Alice answers: both hold a confirmed session afterwards."""
    await carol.send_text(alice.account_id, "hello alice")
    await events_until_message(alice, "hello alice")
    await alice.send_text(carol.account_id, "hello carol")
    await events_until_message(carol, "hello carol")
    # Delivery receipts owed go now, so the later sessions start with nothing queued.
    assert await carol.flush() and await alice.flush()


async def test_first_message_after_a_reregistration_is_read_with_a_notice(
    server: ServerProcess, tmp_path: Path
) -> None:
    phone = next_phone()
    alice = await register(server, tmp_path / "alice")
    carol_old = await register(server, tmp_path / "carol-old", phone)
    async with alice, carol_old:
        await converse(alice, carol_old)
    # A new phone: the same number registered on a new profile (new keys, same device id).
    carol = await register(server, tmp_path / "carol-new", phone)
    assert carol.account_id == carol_old.account_id
    async with alice, carol:
        await carol.send_text(alice.account_id, "new phone, same carol")
        events = await events_until_message(alice, "new phone, same carol")
        assert any(
            isinstance(e, IdentityChanged) and e.account_id == carol.account_id for e in events
        ), events
        assert not any(isinstance(e, DecryptionFailed) for e in events), events
        # And the conversation goes on both ways over the new session.
        await alice.send_text(carol.account_id, "welcome back")
        await events_until_message(carol, "welcome back")
        texts = [m.text for m in alice.history(carol.account_id) if not m.outgoing]
        assert texts == ["hello alice", "new phone, same carol"]


async def test_a_lost_session_is_healed_by_a_retry_request(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice = await register(server, tmp_path / "alice")
    carol = await register(server, tmp_path / "carol")
    async with alice, carol:
        await converse(alice, carol)
    # Alice loses her session with Carol's device (say, a restored backup without it).
    with sqlite3.connect(tmp_path / "alice" / "client.db") as db:
        db.execute("DELETE FROM sessions WHERE account_id = ?", (carol.account_id,))
    alice = Client(tmp_path / "alice")
    async with alice, carol:
        await carol.send_text(alice.account_id, "did you get this?")
        events = await events_until_message(alice, "did you get this?", timeout=20)
        failed = [e for e in events if isinstance(e, DecryptionFailed)]
        assert len(failed) == 1 and failed[0].retry_requested, events
        # Nothing more: the resend is shown once (the receiver deduplicates by client id).
        while (event := await alice.next_event(1.0)) is not None:
            assert not isinstance(event, Message), event
        history = alice.history(carol.account_id)
        texts = [m.text for m in history if not m.outgoing and m.status != "undecryptable"]
        assert texts == ["hello alice", "did you get this?"]
        placeholders = [m for m in history if m.status == "undecryptable"]
        assert len(placeholders) == 1 and "asked them to resend" in placeholders[0].text
        # The healed session carries Alice's answer too.
        await alice.send_text(carol.account_id, "yes, now I did")
        await events_until_message(carol, "yes, now I did")
