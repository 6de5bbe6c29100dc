"""Sent copies and read-state sync (spec D): one send frame reaches the recipient's devices and
the sender's own other devices; the copy shows there as outgoing."""

from __future__ import annotations

from porch.client.core import SendFrame
from porch.client.events import Message
from porch.crypto.content import Receipt, Sent, decode_content, encode_content

from .conftest import Peer, PeerFactory, accounts_of, devices_of, events, fetches


def _shown(frame: SendFrame, sender: Peer, to: Peer) -> list[Message]:
    shown: list[Message] = []
    for env in sender.envelopes_for(frame.frame, to):
        actions = to.core.receive(env)
        for fetch in fetches(actions):
            actions += to.core.keys_fetched(sender.account_id, fetch.token, sender.bundle())
        shown += [e for e in events(actions) if isinstance(e, Message)]
    return shown


def test_a_text_goes_to_the_recipient_and_as_a_sent_copy_to_own_devices(
    make_peer: PeerFactory,
) -> None:
    alice, bob = make_peer(), make_peer()
    alice2 = make_peer(of=alice, device_id=2)
    directory = {bob.account_id: bob}.__getitem__
    client_id = alice.queue_text(bob, "hi bob")
    [frame] = alice.send_all(directory)
    # One frame, two destinations: bob's device and alice's other one (never alice's own).
    assert accounts_of(frame.frame) == [bob.account_id, alice.account_id]
    assert [m["device"] for m in devices_of(frame.frame, alice.account_id)] == [2]
    [to_bob] = _shown(frame, alice, bob)
    assert (to_bob.text, to_bob.outgoing, to_bob.to) == ("hi bob", False, None)
    [copy] = _shown(frame, alice, alice2)
    assert (copy.id, copy.text, copy.outgoing, copy.to) == (
        client_id,
        "hi bob",
        True,
        bob.account_id,
    )
    # Stored on alice2 as an outgoing message in the conversation with bob, once.
    rows = alice2.store.unshown()
    assert [(r.peer, r.client_id, r.outgoing) for r in rows] == [(bob.account_id, client_id, True)]
    assert _shown(frame, alice, alice2) == []  # a redelivery shows nothing twice


def test_a_read_receipt_marks_the_message_read_on_own_devices(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    alice2 = make_peer(of=alice, device_id=2)
    # bob wrote; both of alice's devices have it.
    bob.queue_text(alice, "read me")
    [frame] = bob.send_all({alice.account_id: alice}.__getitem__)
    for device in (alice, alice2):
        assert [m.text for m in _shown(frame, bob, device)] == ["read me"]
    [incoming] = alice2.store.unshown()
    # alice reads it on device 1: the read receipt to bob has a copy for device 2.
    now = 1_700_000_000_001
    alice.store.enqueue(
        "r1", bob.account_id, encode_content(Receipt("read", (incoming.client_id,))), False, now
    )
    frames = alice.send_all({bob.account_id: bob}.__getitem__)
    receipt = next(f for f in frames if f.frame["id"] == "r1")
    assert accounts_of(receipt.frame) == [bob.account_id, alice.account_id]
    assert _shown(receipt, alice, alice2) == []  # no message: a status change
    status = alice2.store._db.execute(
        "SELECT status FROM messages WHERE client_id = ? AND outgoing = 0", (incoming.client_id,)
    ).fetchone()
    assert status == ("read",)


def test_typing_and_delivered_receipts_are_not_copied(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    make_peer(of=alice, device_id=2)
    alice.store.enqueue(
        "d1", bob.account_id, encode_content(Receipt("delivered", ("x",))), False, 1
    )
    [frame] = alice.send_all({bob.account_id: bob}.__getitem__)
    assert accounts_of(frame.frame) == [bob.account_id]


def test_sent_content_round_trip() -> None:
    copy = Sent("1b4e28ba-2fa1-11d2-883f-0016d3cca427", Receipt("read", ("a",)))
    assert decode_content(encode_content(copy)) == copy


def _status(peer: Peer, client_id: str) -> tuple[str, ...] | None:
    row = peer.store._db.execute(
        "SELECT peer, status FROM messages WHERE client_id = ? AND outgoing = 1", (client_id,)
    ).fetchone()
    return tuple(row) if row is not None else None


def test_a_note_to_self_on_a_one_device_account_is_done_at_once(make_peer: PeerFactory) -> None:
    alice = make_peer()
    client_id = alice.queue_text(alice, "buy milk")
    assert alice.send_all({}.__getitem__) == []  # nothing leaves, nothing fails
    assert _status(alice, client_id) == (alice.account_id, "sent")
    assert alice.core.next_outbox_items() == []  # out of the outbox, not retried


def test_a_note_to_self_reaches_ones_other_devices_as_a_sent_copy(make_peer: PeerFactory) -> None:
    alice = make_peer()
    alice2 = make_peer(of=alice, device_id=2)
    client_id = alice.queue_text(alice, "buy milk")
    [frame] = alice.send_all({}.__getitem__)
    assert accounts_of(frame.frame) == [alice.account_id]  # once, never to this device
    assert [m["device"] for m in devices_of(frame.frame, alice.account_id)] == [2]
    [copy] = _shown(frame, alice, alice2)
    assert (copy.id, copy.text, copy.outgoing, copy.to) == (
        client_id,
        "buy milk",
        True,
        alice.account_id,
    )
    [row] = alice2.store.unshown()
    assert (row.peer, row.outgoing) == (alice.account_id, True)
