"""Send frames too large for the server (porch.client.core.frame_size, fix M2-5): failed with a
sentence, never left in flight to go again on every connection."""

from __future__ import annotations

import pytest

from porch.client.core import EmitEvent, SendFrame
from porch.client.core.frame_size import MAX_CONTENT_BYTES, frame_bytes
from porch.client.errors import MessageTooLong
from porch.client.events import SendFailedEvent
from porch.client.outgoing import queue_outgoing
from porch.crypto.content import Text, encode_content
from porch.crypto.rich import Attachment

from .conftest import Peer, PeerFactory

NOW = 1_700_000_000_000


def _big_text(cid: str) -> Text:
    """Ten attachments, each with a 16 KiB preview: the tester's 591,805-byte frame."""
    attachments = tuple(
        Attachment(
            f"AAECAwQFBgcICQoLDA0OD{i}",
            bytes(64),
            bytes(32),
            1000,
            "image/jpeg",
            thumbnail=bytes([i]) * 16384,
        )
        for i in range(10)
    )
    return Text(cid, "", NOW, attachments=attachments)


def _enqueue(peer: Peer, to: Peer, text: Text) -> None:
    # As an older client (or another app on the profile) could have queued it: no check.
    peer.store.enqueue(text.id, to.account_id, encode_content(text), False, NOW)


def _failures(peer: Peer) -> dict[str, tuple[str | None, str | None]]:
    return {e.client_id: (e.error_code, e.error) for e in peer.store.outbox_entries()}


def test_a_frame_over_a_known_limit_fails_before_it_leaves(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    _enqueue(alice, bob, _big_text("big1"))
    alice.core._outbox.frame_limit = 262_144  # as if the server had said so once
    sent = alice.send_all({bob.account_id: bob}.__getitem__)
    assert not [f for f in sent if f.client_id == "big1"]
    code, why = _failures(alice)["big1"]
    assert code == "frame_too_large" and why is not None
    assert "more than the server accepts (262,144)" in why and "fewer or smaller" in why
    assert "big1" not in alice.core._outbox.inflight


def test_a_refless_frame_too_large_fails_the_inflight_item(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    _enqueue(alice, bob, _big_text("big2"))
    small = alice.queue_text(bob, "small")
    sent = alice.send_all({bob.account_id: bob}.__getitem__)
    [frame] = [f for f in sent if f.client_id == "big2"]
    assert frame_bytes(frame.frame) > 262_144  # one device; the tester had two
    # The server refuses it before parsing: no ref says which frame it was.
    actions = alice.core.receive(
        {"type": "error", "code": "frame_too_large", "message": "too big", "limit": 262_144}
    )
    events = [a.event for a in actions if isinstance(a, EmitEvent)]
    assert [e.id for e in events if isinstance(e, SendFailedEvent)] == ["big2"]
    assert _failures(alice)["big2"][0] == "frame_too_large"
    assert "big2" not in alice.core._outbox.inflight and small in alice.core._outbox.inflight
    # Failed stays failed: the next connection does not send it again.
    alice.core._outbox.reset()
    again = alice.send_all({bob.account_id: bob}.__getitem__)
    assert all(isinstance(f, SendFrame) and f.client_id != "big2" for f in again)


def test_the_sdk_refuses_such_a_content_before_queueing(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    assert len(encode_content(_big_text("x"))) > MAX_CONTENT_BYTES
    with pytest.raises(MessageTooLong) as info:
        queue_outgoing(
            alice.store, bob.account_id, _big_text("big3"), device_id=1, me="me", now=NOW
        )
    assert "send fewer attachments at once" in str(info.value)
    assert alice.store.outbox_entries() == []
