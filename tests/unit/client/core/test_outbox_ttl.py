"""Disappearing messages in the outbox (spec §7): an item's ttl reaches its `send` frame (1:1
with its sent copy, and a group's message frame but not its key shares), shortened by the
time it waited; an item whose ttl ran out before it could leave fails with `expired` and
leaves nothing behind in the outbox."""

from __future__ import annotations

from porch.client.core import Action, ClaimKeys, SendFrame, SendSettled
from porch.client.errors import SendFailed
from porch.client.events import SendFailedEvent
from porch.crypto.content import Text, encode_content
from porch.protocol.client_frames import SendFrame as SendModel
from porch.protocol.client_frames import parse_client_frame
from porch.protocol.codec import dumps

from .conftest import Peer, PeerFactory, accounts_of, events
from .test_group_send import GID, directory_of, put_group

NOW = 1_700_000_000_000  # when Peer.queue_text enqueues


def _at(peer: Peer, ms: int) -> None:
    peer.core.state.clock = lambda: NOW + ms


def _checked_ttl(frame: SendFrame) -> int | None:
    """The frame's ttl as the server's model reads it (so it is within the wire bounds)."""
    model = parse_client_frame(dumps(frame.frame))
    assert isinstance(model, SendModel)
    return model.ttl


def test_the_ttl_left_reaches_the_frame_with_the_sent_copy(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    make_peer(of=alice, device_id=2)
    alice.queue_text(bob, "gone in a minute", ttl=60)
    _at(alice, 10_500)  # it waited 10.5 s: 49.5 s are left, rounded up
    [frame] = alice.send_all(directory_of(bob))
    assert accounts_of(frame.frame) == [bob.account_id, alice.account_id]  # one frame, both
    assert _checked_ttl(frame) == 50


def test_an_item_without_ttl_sends_none(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    alice.queue_text(bob, "stays")
    _at(alice, 10**9)  # however long it waited
    [frame] = alice.send_all(directory_of(bob))
    assert "ttl" not in frame.frame
    assert _checked_ttl(frame) is None


def test_a_clock_gone_back_never_lengthens_the_ttl(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    alice.queue_text(bob, "x", ttl=5)
    _at(alice, -3_600_000)
    [frame] = alice.send_all(directory_of(bob))
    assert _checked_ttl(frame) == 5


def _assert_expired(peer: Peer, to: Peer, client_id: str, actions: list[Action]) -> None:
    [settled] = [a for a in actions if isinstance(a, SendSettled)]
    assert isinstance(settled.error, SendFailed) and settled.error.code == "expired"
    assert str(settled.error).endswith("send it again if it is still wanted")
    [failed] = [e for e in events(actions) if isinstance(e, SendFailedEvent)]
    assert (failed.id, failed.recipient, failed.code) == (client_id, to.account_id, "expired")
    assert not [a for a in actions if isinstance(a, SendFrame | ClaimKeys)]
    # Nothing of it stays, queued or as a failed row; its history line shows it failed.
    assert peer.store.outbox_state(client_id) is None
    assert peer.core.next_outbox_items() == []
    [row] = peer.store.history(to.account_id)
    assert (row.client_id, row.status) == (client_id, "failed")


def test_an_item_whose_ttl_ran_out_in_the_outbox_is_failed_as_expired(
    make_peer: PeerFactory,
) -> None:
    alice, bob = make_peer(), make_peer()
    client_id = alice.queue_text(bob, "too late", ttl=60)
    _at(alice, 60_000)
    [item] = alice.core.next_outbox_items()
    _assert_expired(alice, bob, client_id, alice.core.prepare(item))


def test_an_item_whose_ttl_ran_out_during_the_key_claim_is_failed(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    client_id = alice.queue_text(bob, "slow directory", ttl=2)
    _at(alice, 1_000)
    [item] = alice.core.next_outbox_items()
    claims = alice.core.prepare(item)
    assert claims and all(isinstance(c, ClaimKeys) for c in claims)
    _at(alice, 2_000)  # the claims come back after the timer
    actions: list[Action] = []
    for claim in claims:
        assert isinstance(claim, ClaimKeys)
        target = alice if claim.account == alice.account_id else bob
        actions += alice.core.keys_claimed(claim, target.bundle(not claim.listing, claim.devices))
    _assert_expired(alice, bob, client_id, actions)


def test_a_group_message_carries_the_ttl_and_its_key_shares_do_not(
    make_peer: PeerFactory,
) -> None:
    alice, bob, carol = make_peer(), make_peer(), make_peer()
    put_group([alice, bob, carol], [alice.account_id, bob.account_id, carol.account_id])
    content = encode_content(Text("gt1", "disappearing in the group", NOW, group=GID))
    alice.store.enqueue("gt1", f"g:{GID}", content, False, NOW, ttl=30)
    _at(alice, 0)
    *shares, message = alice.send_all(directory_of(bob, carol))
    assert shares and message.frame["id"] == "gt1"
    assert _checked_ttl(message) == 30
    assert all("ttl" not in s.frame for s in shares)
