"""The core's receive path, driven frame by frame: no socket, no server, no event loop."""

from __future__ import annotations

import base64
import logging
import os

import pytest

from porch.client import retry
from porch.client.core import (
    ClaimKeys,
    FetchGroup,
    Reconnect,
    SendFrame,
    SendSettled,
    TopUpKeys,
    WakeOutbox,
)
from porch.client.core.state import ONE_TIME_KEYS_LOW, ONE_TIME_KEYS_TARGET
from porch.client.errors import ServerError, ServerUnreachable
from porch.client.events import DecryptionFailed, Message, ReceiptEvent
from porch.crypto.content import Retry, decode_content

from .conftest import PeerFactory, accounts_of, devices_of, events, fetches, frames_of


def test_a_text_round_trip_with_acks_and_delivered_receipts(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    directory = {alice.account_id: alice, bob.account_id: bob}.__getitem__
    client_id = alice.queue_text(bob, "hello bob")
    [send] = alice.send_all(directory)
    assert send.client_id == client_id and accounts_of(send.frame) == [bob.account_id]
    # The server's answer settles the waiter and marks the message sent.
    sent = alice.core.receive({"type": "sent", "id": client_id, "ts": 1_700_000_000_500})
    assert SendSettled(client_id, 1_700_000_000_500) in sent
    assert alice.store.history(bob.account_id)[-1].status == "sent"

    [envelope] = alice.envelopes_for(send.frame, bob)
    actions = bob.core.receive(envelope)
    [fetch] = fetches(actions)  # bob has never seen alice's device: her keys first
    assert fetch.account == alice.account_id and fetch.reason == "unknown_device"
    assert not events(actions) and not bob.core.flush()  # parked: nothing stored, no ack
    actions = bob.core.keys_fetched(alice.account_id, fetch.token, alice.bundle())
    [message] = events(actions)
    assert isinstance(message, Message) and message.text == "hello bob"
    assert message.sender == alice.account_id and message.server_ts == envelope["ts"]
    flushed = bob.core.flush()
    assert frames_of(flushed, "ack") == [{"type": "ack", "ids": [envelope["id"]]}]
    assert WakeOutbox() in flushed  # the delivered receipt went into bob's outbox

    [receipt] = bob.send_all(directory)  # bob's session from alice's message carries it
    actions = alice.core.receive(bob.envelopes_for(receipt.frame, alice)[0])
    assert not fetches(actions)  # alice cached bob's device when she claimed his keys
    assert ReceiptEvent(bob.account_id, "delivered", (client_id,)) in events(actions)
    assert alice.store.history(bob.account_id)[-1].status == "delivered"


def test_a_redelivered_envelope_is_shown_once_and_acked_again(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    directory = {alice.account_id: alice, bob.account_id: bob}.__getitem__
    alice.queue_text(bob, "once")
    [send] = alice.send_all(directory)
    [envelope] = alice.envelopes_for(send.frame, bob)
    [fetch] = fetches(bob.core.receive(envelope))
    assert len(events(bob.core.keys_fetched(alice.account_id, fetch.token, alice.bundle()))) == 1
    bob.core.flush()
    again = bob.core.receive(envelope)  # the ack was lost: the server sends it again
    assert events(again) == [] and fetches(again) == []
    assert frames_of(bob.core.flush(), "ack") == [{"type": "ack", "ids": [envelope["id"]]}]
    assert [m.text for m in bob.store.history(alice.account_id)] == ["once"]


def test_a_sender_waiting_for_keys_does_not_stall_the_others(make_peer: PeerFactory) -> None:
    alice, bob, carol = make_peer(), make_peer(), make_peer()
    directory = {p.account_id: p for p in (alice, bob, carol)}.__getitem__
    carol.queue_text(bob, "carol 1")
    [c1] = carol.send_all(directory)
    [fetch] = fetches(bob.core.receive(carol.envelopes_for(c1.frame, bob)[0]))
    bob.core.keys_fetched(carol.account_id, fetch.token, carol.bundle())
    bob.core.flush()

    alice.queue_text(bob, "alice 1")
    alice.queue_text(bob, "alice 2")
    a1, a2 = alice.send_all(directory)
    carol.queue_text(bob, "carol 2")
    [c2] = carol.send_all(directory)
    [e_a1], [e_a2], [e_c2] = (
        x.envelopes_for(f.frame, bob) for x, f in ((alice, a1), (alice, a2), (carol, c2))
    )

    [fetch] = fetches(bob.core.receive(e_a1))
    assert fetch.account == alice.account_id
    # Carol's envelope is handled at once while alice's keys are being fetched...
    assert [e.text for e in events(bob.core.receive(e_c2)) if isinstance(e, Message)] == ["carol 2"]
    # ...alice's second one waits behind her first (no second fetch), in order.
    assert bob.core.receive(e_a2) == [] and bob.core.parked == 2
    assert frames_of(bob.core.flush(), "ack") == [{"type": "ack", "ids": [e_c2["id"]]}]
    assert bob.core.keys_fetched(alice.account_id, fetch.token + 99, alice.bundle()) == []
    shown = events(bob.core.keys_fetched(alice.account_id, fetch.token, alice.bundle()))
    assert [e.text for e in shown if isinstance(e, Message)] == ["alice 1", "alice 2"]
    assert frames_of(bob.core.flush(), "ack") == [{"type": "ack", "ids": [e_a1["id"], e_a2["id"]]}]
    assert bob.core.parked == 0


def test_a_fetch_that_fails_for_now_reconnects_without_acking(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    directory = {alice.account_id: alice, bob.account_id: bob}.__getitem__
    alice.queue_text(bob, "later")
    [send] = alice.send_all(directory)
    [envelope] = alice.envelopes_for(send.frame, bob)
    [fetch] = fetches(bob.core.receive(envelope))
    actions = bob.core.keys_fetch_failed(alice.account_id, fetch.token, ServerUnreachable("down"))
    assert any(isinstance(a, Reconnect) for a in actions)
    assert bob.core.parked == 0 and frames_of(bob.core.flush(), "ack") == []
    # After the reconnect it comes again; a sender without keys is acknowledged, and reported.
    bob.core.connected({"type": "ready", "one_time_keys": 50})
    [fetch] = fetches(bob.core.receive(envelope))
    gone = ServerError("not_found", "no such account", 404)
    [failed] = events(bob.core.keys_fetch_failed(alice.account_id, fetch.token, gone))
    assert isinstance(failed, DecryptionFailed) and not failed.retry_requested
    assert frames_of(bob.core.flush(), "ack") == [{"type": "ack", "ids": [envelope["id"]]}]


def _garbage(alice_env: dict[str, object]) -> dict[str, object]:
    body = base64.b64encode(os.urandom(120)).decode()
    return {**alice_env, "id": int(str(alice_env["id"])) + 1, "kind": 1, "body": body}


def test_a_failed_decryption_refetches_then_asks_for_a_resend(
    make_peer: PeerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = make_peer(), make_peer()
    directory = {alice.account_id: alice, bob.account_id: bob}.__getitem__
    alice.queue_text(bob, "first")
    [send] = alice.send_all(directory)
    [envelope] = alice.envelopes_for(send.frame, bob)
    [fetch] = fetches(bob.core.receive(envelope))
    bob.core.keys_fetched(alice.account_id, fetch.token, alice.bundle())
    bob.core.flush()
    bob.send_all(directory)  # the delivered receipt

    broken = _garbage(envelope)
    [refetch] = fetches(bob.core.receive(broken))  # cached keys may be stale: ask afresh
    assert refetch.reason == "refetch" and bob.core.parked == 1
    [failed] = events(bob.core.keys_fetched(alice.account_id, refetch.token, alice.bundle()))
    assert isinstance(failed, DecryptionFailed) and failed.retry_requested
    assert failed.server_ts == broken["ts"]
    assert frames_of(bob.core.flush(), "ack") == [{"type": "ack", "ids": [broken["id"]]}]
    [placeholder] = [
        m for m in bob.store.history(alice.account_id) if m.status == retry.UNDECRYPTABLE
    ]
    assert retry.ASKED_TO_RESEND in placeholder.text
    # Told through the placeholder and the event: no warning per envelope, which anyone could
    # turn into a flood of lines on a `porch recv` terminal.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    # The request goes out on a new session: a claim for alice's device first.
    [item] = bob.core.next_outbox_items()
    assert decode_content(item.content) == Retry(int(str(broken["ts"])), alice.device_id)
    [claim] = bob.core.prepare(item)
    assert isinstance(claim, ClaimKeys) and claim.devices == (alice.device_id,)
    [frame] = [
        a for a in bob.core.keys_claimed(claim, alice.bundle(True)) if isinstance(a, SendFrame)
    ]
    assert (
        devices_of(frame.frame, alice.account_id)[0]["kind"] == 0
    )  # a pre-key message alice can always read


def test_refetches_after_failures_are_capped_per_device(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    directory = {alice.account_id: alice, bob.account_id: bob}.__getitem__
    alice.queue_text(bob, "first")
    [send] = alice.send_all(directory)
    [envelope] = alice.envelopes_for(send.frame, bob)
    [fetch] = fetches(bob.core.receive(envelope))
    bob.core.keys_fetched(alice.account_id, fetch.token, alice.bundle())
    refetched = 0
    for n in range(retry.MAX_REFETCHES_PER_DEVICE + 2):
        broken = {**_garbage(envelope), "id": 10_000 + n, "ts": 1_800_000_000_000 + n}
        actions = bob.core.receive(broken)
        for f in fetches(actions):
            refetched += 1
            actions = bob.core.keys_fetched(alice.account_id, f.token, alice.bundle())
        assert any(isinstance(e, DecryptionFailed) for e in events(actions))
    assert refetched == retry.MAX_REFETCHES_PER_DEVICE


def test_malformed_and_too_large_envelopes_are_rejected(make_peer: PeerFactory) -> None:
    bob = make_peer()
    bad = {
        "type": "envelope",
        "id": 7,
        "from": "not-an-account",
        "from_device": 1,
        "ts": 1,
        "kind": 0,
        "body": "x",
    }
    big = {"type": "envelope", "id": 8, "from": bob.account_id, "from_device": 1, "too_large": True}
    failed = events(bob.core.receive(bad)) + events(bob.core.receive(big))
    assert [f.reason for f in failed if isinstance(f, DecryptionFailed)] == [
        "malformed",
        "too_large",
    ]
    assert bob.core.receive({"type": "envelope", "id": -1}) == []  # nothing to reject
    flushed = bob.core.flush()
    assert frames_of(flushed, "reject") == [
        {"type": "reject", "ids": [7], "reason": "malformed"},
        {"type": "reject", "ids": [8], "reason": "too_large"},
    ]
    assert frames_of(flushed, "ack") == []


def test_a_batch_of_envelopes_is_acked_at_its_end(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    directory = {alice.account_id: alice, bob.account_id: bob}.__getitem__
    alice.queue_text(bob, "warm up")
    [send] = alice.send_all(directory)
    [envelope] = alice.envelopes_for(send.frame, bob)
    [fetch] = fetches(bob.core.receive(envelope))
    bob.core.keys_fetched(alice.account_id, fetch.token, alice.bundle())
    bob.core.flush()
    for text in ("one", "two", "three"):
        alice.queue_text(bob, text)
    sends = alice.send_all(directory)
    items = [e for s in sends for e in alice.envelopes_for(s.frame, bob)]
    actions = bob.core.receive({"type": "envelopes", "items": items})
    assert [e.text for e in events(actions) if isinstance(e, Message)] == ["one", "two", "three"]
    assert frames_of(actions, "ack") == [{"type": "ack", "ids": [i["id"] for i in items]}]


def test_parked_envelopes_are_bounded(make_peer: PeerFactory) -> None:
    senders = [make_peer() for _ in range(3)]
    bob = make_peer()
    bob.core = type(bob.core)(bob.store, bob.olm, bob.account_id, bob.device_id, max_parked=2)
    directory = {p.account_id: p for p in (*senders, bob)}.__getitem__
    envelopes = []
    for sender in senders:
        sender.queue_text(bob, "waits for keys")
        [send] = sender.send_all(directory)
        envelopes += sender.envelopes_for(send.frame, bob)
    assert len(fetches(bob.core.receive(envelopes[0]) + bob.core.receive(envelopes[1]))) == 2
    assert bob.core.parked == 2
    # A server that overruns its delivery window: reconnect, nothing acknowledged.
    assert any(isinstance(a, Reconnect) for a in bob.core.receive(envelopes[2]))
    assert bob.core.parked == 0 and frames_of(bob.core.flush(), "ack") == []


def test_keys_run_low_then_are_topped_up(make_peer: PeerFactory) -> None:
    bob = make_peer()
    assert bob.core.connected({"type": "ready", "one_time_keys": 50}) == []
    assert bob.core.connected({"type": "ready", "one_time_keys": 3}) == [TopUpKeys()]
    assert bob.core.receive({"type": "keys_low"}) == [TopUpKeys()]
    assert bob.core.one_time_keys(ONE_TIME_KEYS_LOW) == []
    assert bob.store.get_pickle("olm_account") is None
    assert len(bob.core.one_time_keys(5)) == ONE_TIME_KEYS_TARGET - 5
    assert bob.store.get_pickle("olm_account") is not None  # saved before the upload


def test_group_changed_asks_for_the_group_once(make_peer: PeerFactory) -> None:
    # A hint to refetch (spec B): one FetchGroup, a second hint meanwhile fetches once more.
    bob = make_peer()
    gid = "0b9f0c4e-5a4c-4d8e-9b1e-2f3a4b5c6d7e"
    frame = {"type": "group_changed", "group": gid, "revision": 2}
    assert bob.core.receive(frame) == [FetchGroup(gid)]
    assert bob.core.receive(frame) == []
    assert bob.core.receive({"type": "group_changed", "group": "nope", "revision": 2}) == []
    assert bob.core.parked == 0 and bob.core.flush() == []
