"""A verified contact whose master key changed: texts to it pause until the user accepts or
verifies the new key (docs/design.md, "Verified contacts"); receipts still go."""

from __future__ import annotations

from porch.client.core import ClaimKeys, SendFrame, SendSettled
from porch.client.errors import SendPaused
from porch.client.events import IdentityChanged, Message, SendPausedEvent
from porch.client.verified import Verification
from porch.crypto.content import Receipt, encode_content

from .conftest import Peer, PeerFactory, accounts_of, events, fetches


def _verified_then_reregistered(make_peer: PeerFactory) -> tuple[Peer, Peer, Peer]:
    """Alice talked to bob and verified his safety number; then bob registered again."""
    alice, bob = make_peer(), make_peer()
    alice.queue_text(bob, "before")
    [frame] = alice.send_all({bob.account_id: bob}.__getitem__)
    alice.core.receive({"type": "sent", "id": frame.frame["id"], "ts": 1})
    alice.store.set_verified_key(bob.account_id, bob.master.public_b64)
    assert alice.store.verification(bob.account_id) is Verification.VERIFIED
    return alice, bob, make_peer(reregister=bob)


def _read(frame: SendFrame, sender: Peer, to: Peer) -> list[str]:
    """What ``to`` shows from one `send` frame of ``sender``'s."""
    shown = []
    for env in sender.envelopes_for(frame.frame, to):
        actions = to.core.receive(env)
        for fetch in fetches(actions):
            actions += to.core.keys_fetched(sender.account_id, fetch.token, sender.bundle())
        shown += [e.text for e in events(actions) if isinstance(e, Message)]
    return shown


def test_a_text_to_a_verified_contact_whose_key_changed_pauses(make_peer: PeerFactory) -> None:
    alice, bob, new_bob = _verified_then_reregistered(make_peer)
    client_id = alice.queue_text(bob, "are you still you?")
    # The old session still exists: the server refuses it as stale, then the claim shows the
    # new key. Nothing is encrypted to it.
    [item] = alice.core.next_outbox_items()
    [old] = alice.core.prepare(item)
    assert isinstance(old, SendFrame)
    wrong = {"account": bob.account_id, "missing": [], "extra": [], "stale": [1]}
    alice.core.receive(
        {"type": "error", "code": "stale_devices", "ref": client_id, "accounts": [wrong]}
    )
    [item] = alice.core.next_outbox_items()
    [claim] = alice.core.prepare(item)
    assert isinstance(claim, ClaimKeys)
    actions = alice.core.keys_claimed(claim, new_bob.bundle(True))
    assert not any(isinstance(a, SendFrame) for a in actions)
    [settled] = [a for a in actions if isinstance(a, SendSettled)]
    assert isinstance(settled.error, SendPaused) and settled.error.details["queued_id"] == client_id
    shown = events(actions)
    assert IdentityChanged(bob.account_id) in shown
    assert SendPausedEvent(client_id, bob.account_id) in shown
    assert alice.store.verification(bob.account_id) is Verification.KEY_CHANGED
    state = alice.store.outbox_state(client_id)
    assert state is not None and state[:2] == ("paused", "identity_changed")
    assert "safety number changed since you verified it" in (state[2] or "")
    # It stays queued, not sent: the outbox has nothing to send, and a second text pauses at
    # once, without a claim.
    assert alice.core.next_outbox_items() == []
    second = alice.queue_text(bob, "hello?")
    [item] = alice.core.next_outbox_items()
    actions = alice.core.prepare(item)
    assert not any(isinstance(a, SendFrame | ClaimKeys) for a in actions)
    assert (alice.store.outbox_state(second) or ("gone",))[0] == "paused"
    assert alice.store.paused_count(bob.account_id) == 2
    # Typing is not sent to the unaccepted key either.
    assert alice.core.typing_frame(bob.account_id, True, "t1") is None


def test_receipts_still_go_to_a_paused_contact(make_peer: PeerFactory) -> None:
    alice, bob, new_bob = _verified_then_reregistered(make_peer)
    alice.store.set_contact(bob.account_id, master_key=new_bob.master.public_b64)
    assert alice.store.verification(bob.account_id) is Verification.KEY_CHANGED
    alice.core.queue_content(bob.account_id, encode_content(Receipt("delivered", ("x",))))
    frames = alice.send_all({bob.account_id: new_bob}.__getitem__)
    assert len(frames) == 1 and accounts_of(frames[0].frame) == [bob.account_id]


def test_accepting_the_new_key_sends_the_paused_texts_once_in_order(
    make_peer: PeerFactory,
) -> None:
    alice, bob, new_bob = _verified_then_reregistered(make_peer)
    alice.store.set_contact(bob.account_id, master_key=new_bob.master.public_b64)
    ids = [alice.queue_text(bob, "one"), alice.queue_text(bob, "two")]
    for item in alice.core.next_outbox_items():
        alice.core.prepare(item)
    assert [(alice.store.outbox_state(i) or ("gone",))[0] for i in ids] == ["paused"] * 2
    # What Client.accept_identity does: unverified again, then the paused items queue again.
    alice.store.set_verified_key(bob.account_id, None)
    assert alice.store.resume(bob.account_id) == 2
    assert alice.store.verification(bob.account_id) is Verification.UNVERIFIED
    alice.olm.forget_peer((bob.account_id, 1))  # the stale session, as the server would say
    alice.store.drop_peer_device(bob.account_id, 1)
    frames = alice.send_all({bob.account_id: new_bob}.__getitem__)
    assert [f.client_id for f in frames] == ids
    assert [t for f in frames for t in _read(f, alice, new_bob)] == ["one", "two"]
    assert alice.core.next_outbox_items() == []


def test_verifying_the_new_key_resumes_and_an_unverified_change_never_pauses(
    make_peer: PeerFactory,
) -> None:
    alice, bob, new_bob = _verified_then_reregistered(make_peer)
    alice.store.set_contact(bob.account_id, master_key=new_bob.master.public_b64)
    client_id = alice.queue_text(bob, "paused")
    [item] = alice.core.next_outbox_items()
    alice.core.prepare(item)
    alice.store.set_verified_key(bob.account_id, new_bob.master.public_b64)  # compared again
    assert alice.store.verification(bob.account_id) is Verification.VERIFIED
    assert alice.store.resume(bob.account_id) == 1
    [item] = alice.core.next_outbox_items()
    assert item.client_id == client_id
    assert isinstance(alice.core.prepare(item)[0], SendFrame)
    # Carol never verified dave: his new key only brings the notice, as before.
    carol, dave = make_peer(), make_peer()
    carol.queue_text(dave, "hi")
    carol.send_all({dave.account_id: dave}.__getitem__)
    carol.store.set_contact(dave.account_id, master_key=make_peer().master.public_b64)
    assert carol.store.verification(dave.account_id) is Verification.UNVERIFIED
    carol.queue_text(dave, "still goes")
    [item] = carol.core.next_outbox_items()
    assert isinstance(carol.core.prepare(item)[0], SendFrame)
