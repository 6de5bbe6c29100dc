"""Queueing outgoing contents (porch.client.outgoing): texts with extras, timers and ttl."""

from __future__ import annotations

from typing import Any

import pytest

from porch.client.errors import MessageTooLong, UsageError
from porch.client.outgoing import queue_outgoing, with_timer
from porch.client.store import LocalStore
from porch.crypto.content import MAX_TEXT_BYTES, Reaction, Text, decode_content
from porch.crypto.rich import Attachment, Quote

ME = "aaaaaaaa-0000-4000-8000-000000000001"
PEER = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
NOW = 1_700_000_000_000
_FROM: dict[str, Any] = {"device_id": 1, "me": ME, "now": NOW}
PHOTO = Attachment("AAECAwQFBgcICQoLDA0ODw", bytes(64), bytes(32), 9, "image/png")


def _ttl(store: LocalStore, client_id: str) -> int | None:
    row = store._db.execute("SELECT ttl FROM outbox WHERE client_id = ?", (client_id,)).fetchone()
    return None if row is None else row[0]


def test_a_disappearing_text_is_queued_with_its_ttl_and_recorded(store: LocalStore) -> None:
    text = with_timer(
        Text("m1", "soon gone", NOW, attachments=(PHOTO,), reply=Quote("q", PEER)), 60
    )
    assert text.expires == 60
    assert queue_outgoing(store, PEER, text, device_id=1, me=ME, now=NOW) == "m1"
    assert _ttl(store, "m1") == 60
    [item] = store.pending(0, 10)
    assert decode_content(item.content) == text
    [m] = store.history(PEER)
    assert (m.status, m.outgoing, m.expires_at) == ("pending", True, NOW + 60_000)
    assert m.attachments == (PHOTO,) and m.reply == Quote("q", PEER)


def test_an_explicit_expiry_and_other_kinds_are_left_alone(store: LocalStore) -> None:
    assert with_timer(Text("m", "x", NOW, expires=5), 60).expires == 5
    reaction = Reaction("m", PEER, "👍", NOW)
    assert with_timer(reaction, 60) == reaction
    cid = queue_outgoing(store, PEER, reaction, device_id=1, me=ME, now=NOW)
    assert _ttl(store, cid) is None and store.history(PEER) == []


def test_group_texts_record_their_author(store: LocalStore) -> None:
    peer = "g:6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    queue_outgoing(store, peer, Text("g1", "hi", NOW, group=peer[2:]), device_id=1, me=ME, now=NOW)
    assert store.history(peer)[0].author == ME


def test_refusals_are_usage_errors(store: LocalStore) -> None:
    with pytest.raises(MessageTooLong):
        queue_outgoing(store, PEER, Text("m", "x" * (MAX_TEXT_BYTES + 1), NOW), **_FROM)
    with pytest.raises(UsageError) as info:
        queue_outgoing(store, PEER, Reaction("m", PEER, "x" * 40, NOW), **_FROM)
    assert "cannot send that" in str(info.value)
    assert store.pending(0, 10) == [] and store.history(PEER) == []
