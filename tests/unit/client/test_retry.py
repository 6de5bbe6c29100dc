"""Retry requests: the sender's resend rules and limits, the receiver's request cap."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from porch.client import retry
from porch.client.history import MessageExtra
from porch.client.retry import MAX_RESENDS_PER_MESSAGE, RESEND_WINDOW_MS, Retrier
from porch.client.store import HistoryMessage, LocalStore
from porch.crypto.at_rest import Sealer
from porch.crypto.content import Retry, Text, decode_content
from porch.crypto.rich import Attachment, Quote

PEER = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
NOW = 1_700_000_000_000


def _sent(ts: int = NOW - 1000, status: str = "sent") -> HistoryMessage:
    return HistoryMessage(PEER, "m1", True, 1, ts, "hello", status)


def test_plan_resend_rules() -> None:
    assert isinstance(retry.plan_resend(_sent(), 0, NOW), retry.Resend)
    assert isinstance(retry.plan_resend(_sent(status="read"), 0, NOW), retry.Resend)
    assert isinstance(retry.plan_resend(None, 0, NOW), retry.NoResend)
    received = HistoryMessage(PEER, "m1", False, 1, NOW, "hi", "received")
    assert isinstance(retry.plan_resend(received, 0, NOW), retry.NoResend)
    assert isinstance(retry.plan_resend(_sent(status="pending"), 0, NOW), retry.NoResend)
    old = _sent(ts=NOW - RESEND_WINDOW_MS - 1)
    assert isinstance(retry.plan_resend(old, 0, NOW), retry.NoResend)
    assert isinstance(retry.plan_resend(_sent(), MAX_RESENDS_PER_MESSAGE - 1, NOW), retry.Resend)
    assert isinstance(retry.plan_resend(_sent(), MAX_RESENDS_PER_MESSAGE, NOW), retry.NoResend)


def test_request_limiter_caps_per_device_and_window() -> None:
    limiter = retry.RequestLimiter(limit=2, window_ms=1000, max_devices=2)
    a, b, c = (PEER, 1), (PEER, 2), (PEER, 3)
    assert limiter.allow(a, 0) and limiter.allow(a, 10)
    assert not limiter.allow(a, 20)
    assert limiter.allow(b, 20)  # another device has its own count
    assert limiter.allow(a, 1005)  # the first request left the window
    assert not limiter.allow(a, 1006)
    # Bounded: a third device pushes out the least recently asked (b), whose count restarts.
    assert limiter.allow(c, 1007)
    assert limiter.allow(b, 1008) and limiter.allow(b, 1009)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    s = LocalStore(tmp_path / "client.db", Sealer(os.urandom(32)))
    yield s
    s.close()


class Outbox:
    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []
        self.ttls: list[int | None] = []
        self.renewed: list[tuple[str, int]] = []

    def queue(self, recipient: str, content: bytes, ttl: int | None = None) -> None:
        self.items.append((recipient, content))
        self.ttls.append(ttl)

    def renew(self, peer: str, device: int) -> None:
        self.renewed.append((peer, device))


def _retrier(store: LocalStore, outbox: Outbox, now: int = NOW) -> Retrier:
    return Retrier(lambda: store, 1, outbox.queue, outbox.renew, clock=lambda: now)


def test_answer_resends_the_same_message_at_most_n_times(store: LocalStore) -> None:
    store.add_message(PEER, "m1", True, 1, NOW - 5000, "hello", "pending")
    store.set_status(PEER, ["m1"], outgoing=True, status="sent", ts=NOW - 2000)  # server ts
    outbox = Outbox()
    retrier = _retrier(store, outbox)
    for _ in range(MAX_RESENDS_PER_MESSAGE + 2):
        retrier.answer(PEER, 1, Retry(ts=NOW - 2000, device=1))
    assert len(outbox.items) == MAX_RESENDS_PER_MESSAGE
    # Every request renews the session (the peer could not use it), resent or not.
    assert outbox.renewed == [(PEER, 1)] * (MAX_RESENDS_PER_MESSAGE + 2)
    for recipient, content in outbox.items:
        assert recipient == PEER
        assert decode_content(content) == Text("m1", "hello", NOW - 2000)
    assert store.resend_count(PEER, "m1") == MAX_RESENDS_PER_MESSAGE
    # Also by client id, which is counted against the same message.
    retrier.answer(PEER, 1, Retry(ts=0, device=1, id="m1"))
    assert len(outbox.items) == MAX_RESENDS_PER_MESSAGE


def test_answer_ignores_what_it_must_not_resend(store: LocalStore) -> None:
    store.add_message(PEER, "m1", True, 1, NOW - 2000, "hello", "sent")
    store.add_message(PEER, "old", True, 1, NOW - RESEND_WINDOW_MS - 1, "old", "sent")
    store.add_message(PEER, "in", False, 1, NOW - 3000, "theirs", "received")
    outbox = Outbox()
    retrier = _retrier(store, outbox)
    retrier.answer(PEER, 1, Retry(ts=NOW - 2000, device=2))  # another device of ours sent it
    retrier.answer(PEER, 1, Retry(ts=NOW - 1, device=1))  # nothing sent at that time
    retrier.answer(PEER, 1, Retry(ts=NOW - RESEND_WINDOW_MS - 1, device=1))  # too old
    retrier.answer(PEER, 1, Retry(ts=NOW - 3000, device=1))  # not ours
    assert outbox.items == []


def test_request_renews_the_session_and_is_capped(store: LocalStore) -> None:
    outbox = Outbox()
    retrier = _retrier(store, outbox)
    for i in range(retry.MAX_REQUESTS_PER_DEVICE + 3):
        retrier.request(PEER, 4, NOW - i)
    assert len(outbox.items) == retry.MAX_REQUESTS_PER_DEVICE
    assert decode_content(outbox.items[0][1]) == Retry(ts=NOW, device=4)
    assert outbox.renewed == [(PEER, 4)] * retry.MAX_REQUESTS_PER_DEVICE


def test_key_refetches_are_capped_per_device(store: LocalStore) -> None:
    retrier = _retrier(store, Outbox())
    allowed = [retrier.may_refetch(PEER, 1) for _ in range(retry.MAX_REFETCHES_PER_DEVICE + 2)]
    assert allowed == [True] * retry.MAX_REFETCHES_PER_DEVICE + [False, False]
    assert retrier.may_refetch(PEER, 2)


def test_a_resend_keeps_the_rich_fields_and_what_is_left_of_the_timer(store: LocalStore) -> None:
    photo = Attachment("AAECAwQFBgcICQoLDA0ODw", bytes(range(64)), bytes(32), 2048, "image/png",
                       name="cat.png", width=20, height=10, voice=False)  # fmt: skip
    extra = MessageExtra(attachments=(photo,), reply=Quote("q1", PEER, "earlier"), forwarded=True)
    sent_at = NOW - 10_000  # the sender's clock; the timer was 60 s
    store.add_message(PEER, "m1", True, 1, sent_at, "look", "pending", extra=extra,
                      expires_at=sent_at + 60_000)  # fmt: skip
    store.set_status(PEER, ["m1"], outgoing=True, status="sent", ts=NOW - 9_500)  # server ts
    outbox = Outbox()
    _retrier(store, outbox).answer(PEER, 1, Retry(ts=0, device=1, id="m1"))
    [(_, content)] = outbox.items
    text = decode_content(content)
    assert isinstance(text, Text)
    assert (text.id, text.body, text.attachments) == ("m1", "look", (photo,))
    assert text.reply == Quote("q1", PEER, "earlier") and text.forwarded
    # Receivers compute ts + exp * 1000: still (within a second) when the original expires.
    assert text.expires is not None
    assert 0 <= text.ts + text.expires * 1000 - (sent_at + 60_000) < 1000
    assert outbox.ttls == [50]  # 60 s from sent_at, 10 s of which have passed


def test_no_resend_of_a_deleted_or_disappeared_message(store: LocalStore) -> None:
    store.add_message(PEER, "gone", True, 1, NOW - 70_000, "bye", "sent",
                      expires_at=NOW - 10_000)  # fmt: skip
    outbox = Outbox()
    retrier = _retrier(store, outbox)
    retrier.answer(PEER, 1, Retry(ts=0, device=1, id="gone"))
    deleted = HistoryMessage(PEER, "d", True, 1, NOW - 1000, "", "sent", deleted=True)
    assert isinstance(retry.plan_resend(deleted, 0, NOW), retry.NoResend)
    assert outbox.items == []
