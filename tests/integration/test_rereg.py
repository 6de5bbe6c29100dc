"""Decryption failures heal: refetched keys after a re-registration, retry requests otherwise."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from porch.cli.main import main
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
        incoming = [m for m in alice.history(carol.account_id) if not m.outgoing]
        assert [m.text for m in incoming if m.status == "received"] == [
            "hello alice",
            "new phone, same carol",
        ]
        # The conversation shows the change where it happened, before the new message.
        assert [m.status for m in incoming] == ["received", "notice", "received"]
        assert incoming[1].text.startswith("The safety number with")


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


async def test_porch_recv_prints_the_safety_number_notice(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    phone = next_phone()
    alice = await register(server, tmp_path / "alice")
    carol_old = await register(server, tmp_path / "carol-old", phone)
    async with alice, carol_old:
        await converse(alice, carol_old)
    carol = await register(server, tmp_path / "carol-new", phone)
    async with carol:  # Alice is offline: `porch recv` picks it up
        await carol.send_text(alice.account_id, "it is me, on a new phone")
    capsys.readouterr()
    argv = ["recv", "--profile", str(tmp_path / "alice"), "--wait", "1"]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out.splitlines()
    notice = [line for line in out if line.startswith("! The safety number with")]
    assert len(notice) == 1, out
    assert "changed (they re-registered or reinstalled). Verify it with them." in notice[0]
    assert any(line.endswith(": it is me, on a new phone") for line in out), out


async def test_porch_recv_json_reports_the_lost_message_and_its_resend(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = await register(server, tmp_path / "alice")
    carol = await register(server, tmp_path / "carol")
    async with alice, carol:
        await converse(alice, carol)
    with sqlite3.connect(tmp_path / "alice" / "client.db") as db:
        db.execute("DELETE FROM sessions WHERE account_id = ?", (carol.account_id,))
    async with carol:  # online, to answer the retry request while `porch recv` runs
        await carol.send_text(alice.account_id, "lost and found")
        capsys.readouterr()
        argv = ["recv", "--profile", str(tmp_path / "alice"), "--wait", "3", "--json"]
        assert await asyncio.to_thread(main, argv) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    lost = [r for r in records if r.get("event") == "undecryptable"]
    assert len(lost) == 1, records
    assert lost[0]["from"] == carol.account_id and lost[0]["retry_requested"] is True
    texts = [r["text"] for r in records if "event" not in r]
    assert texts.count("lost and found") == 1, records
