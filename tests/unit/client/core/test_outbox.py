"""The core's send side: preparing outbox items, and the server's answers to them."""

from __future__ import annotations

from typing import Any

from porch.client.core import ClaimKeys, PauseOutbox, SendFrame, SendSettled, WakeOutbox
from porch.client.errors import SendFailed, ServerError, ServerUnreachable
from porch.client.events import Message, SendFailedEvent

from .conftest import PeerFactory, devices_of, events, fetches


def _wrong(account: str, **lists: list[int]) -> dict[str, Any]:
    """The `accounts` detail of a device refusal naming one account (spec A)."""
    entry = {"account": account, "missing": [], "extra": [], "stale": [], **lists}
    return {"accounts": [entry]}


def test_mismatched_devices_claim_the_missing_one_and_resend(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    directory = {alice.account_id: alice, bob.account_id: bob}.__getitem__
    client_id = alice.queue_text(bob, "to every device")
    [first] = alice.send_all(directory)
    assert [m["device"] for m in devices_of(first.frame, bob.account_id)] == [1]
    bob2 = make_peer(of=bob, device_id=2)  # bob added a device alice does not know yet
    refusal = {
        "type": "error",
        "code": "mismatched_devices",
        "ref": client_id,
        **_wrong(bob.account_id, missing=[2]),
    }
    assert alice.core.receive(refusal) == [WakeOutbox()]
    [item] = alice.core.next_outbox_items()  # the same item, the same client id
    assert item.client_id == client_id
    [claim] = alice.core.prepare(item)
    assert isinstance(claim, ClaimKeys) and claim.devices == (2,)
    [again] = alice.core.keys_claimed(claim, bob.bundle(True, claim.devices))
    assert isinstance(again, SendFrame) and again.frame["id"] == client_id
    assert sorted(m["device"] for m in devices_of(again.frame, bob.account_id)) == [1, 2]
    # Each of bob's devices reads its own copy.
    for device in (bob, bob2):
        [env] = alice.envelopes_for(again.frame, device)
        [fetch] = fetches(device.core.receive(env))
        shown = events(device.core.keys_fetched(alice.account_id, fetch.token, alice.bundle()))
        assert [e.text for e in shown if isinstance(e, Message)] == ["to every device"]


def test_stale_and_extra_devices_are_dropped_before_the_resend(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    bob2 = make_peer(of=bob, device_id=2)
    directory = {alice.account_id: alice, bob.account_id: bob}.__getitem__
    client_id = alice.queue_text(bob, "x")
    [first] = alice.send_all(directory)
    assert sorted(m["device"] for m in devices_of(first.frame, bob.account_id)) == [1, 2]
    bob.others.remove(bob2)  # device 2 was removed
    alice.core.receive(
        {
            "type": "error",
            "code": "mismatched_devices",
            "ref": client_id,
            **_wrong(bob.account_id, extra=[2]),
        }
    )
    [item] = alice.core.next_outbox_items()
    [again] = alice.core.prepare(item)  # nothing to claim: device 1's session still serves
    assert isinstance(again, SendFrame)
    assert [m["device"] for m in devices_of(again.frame, bob.account_id)] == [1]
    alice.core.receive(
        {
            "type": "error",
            "code": "stale_devices",
            "ref": client_id,
            **_wrong(bob.account_id, stale=[1]),
        }
    )
    [item] = alice.core.next_outbox_items()
    [claim] = alice.core.prepare(item)  # stale: a new session from a fresh key
    # No device of bob's is left cached, so all of them are claimed.
    assert isinstance(claim, ClaimKeys) and claim.devices is None
    assert alice.store.peer_devices(bob.account_id) == []


def test_a_permanent_refusal_fails_the_item_and_says_so(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    directory = {alice.account_id: alice, bob.account_id: bob}.__getitem__
    client_id = alice.queue_text(bob, "no")
    alice.send_all(directory)
    actions = alice.core.receive(
        {"type": "error", "code": "forbidden", "ref": client_id, "message": "blocked"}
    )
    [settled] = [a for a in actions if isinstance(a, SendSettled)]
    assert isinstance(settled.error, SendFailed) and settled.error.code == "forbidden"
    assert SendFailedEvent(client_id, bob.account_id, "forbidden", "blocked") in events(actions)
    assert alice.core.next_outbox_items() == []
    assert alice.store.outbox_state(client_id) == ("failed", "forbidden", "blocked")


def test_a_transient_refusal_is_sent_again_after_its_delay(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    directory = {alice.account_id: alice, bob.account_id: bob}.__getitem__
    client_id = alice.queue_text(bob, "soon")
    alice.send_all(directory)
    assert alice.core.next_outbox_items() == []  # in flight
    actions = alice.core.receive(
        {"type": "error", "code": "rate_limited", "ref": client_id, "retry_after": 2}
    )
    assert actions == [WakeOutbox(2.0)]
    assert [i.client_id for i in alice.core.next_outbox_items()] == [client_id]


def test_a_claim_that_fails_pauses_or_fails_the_item(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    client_id = alice.queue_text(bob, "keys?")
    [item] = alice.core.next_outbox_items()
    # Bob's devices, and (once) alice's own, for sent copies to her other devices.
    claim, own = alice.core.prepare(item)
    assert isinstance(claim, ClaimKeys) and claim.devices is None  # no device known: all
    assert claim.account == bob.account_id
    assert isinstance(own, ClaimKeys) and (own.account, own.devices) == (alice.account_id, None)
    assert own.listing  # listed first (no one-time key taken), then claimed if needed
    [pause] = alice.core.keys_claim_failed(claim, ServerUnreachable("down"))
    assert isinstance(pause, PauseOutbox)
    assert alice.store.outbox_state(client_id) == ("queued", None, None)
    gone = ServerError("not_found", "no such account", 404)
    actions = alice.core.keys_claim_failed(claim, gone)
    assert any(isinstance(e, SendFailedEvent) for e in events(actions))
    state = alice.store.outbox_state(client_id)
    assert state is not None and state[0] == "failed"


def test_a_bundle_that_does_not_verify_fails_the_item(make_peer: PeerFactory) -> None:
    alice, bob, mallory = make_peer(), make_peer(), make_peer()
    alice.queue_text(bob, "for bob only")
    [item] = alice.core.next_outbox_items()
    claim, _own = alice.core.prepare(item)
    assert isinstance(claim, ClaimKeys)
    forged = bob.bundle(True)
    forged = type(forged)(forged.account_id, mallory.master.public_b64, forged.devices)
    actions = alice.core.keys_claimed(claim, forged)
    [settled] = [a for a in actions if isinstance(a, SendSettled)]
    assert settled.error is not None and not any(isinstance(a, SendFrame) for a in actions)
