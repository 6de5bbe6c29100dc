"""SharedState: outbox states and shown marks, what processes on one profile share."""

from __future__ import annotations

from pathlib import Path

from porch.client.store import LocalStore
from porch.crypto.at_rest import Sealer

PEER = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
OTHER = "11111111-2222-4333-8444-555555555555"
NOW = 1_700_000_000_000


def test_received_messages_stay_unshown_until_a_command_shows_them(store: LocalStore) -> None:
    store.add_message(PEER, "m1", False, 1, NOW, "first", "received", server_ts=NOW + 5)
    store.add_message(PEER, "o1", True, 1, NOW + 1, "mine", "pending")
    store.add_message(OTHER, "m2", False, 2, NOW + 2, "second", "received")
    unshown = store.unshown()
    assert [(m.client_id, m.text) for m in unshown] == [("m1", "first"), ("m2", "second")]
    assert unshown[0].server_ts == NOW + 5 and unshown[1].sender_device == 2
    assert store.mark_shown([unshown[0].row]) == 1
    assert store.mark_shown([unshown[0].row]) == 0  # a second claim loses
    assert [m.client_id for m in store.unshown()] == ["m2"]
    assert store.unshown(after_row=unshown[1].row) == []
    assert store.mark_shown(peer=OTHER) == 1
    assert store.unshown() == []


def test_a_second_connection_sees_the_shown_marks(tmp_path: Path, key: bytes) -> None:
    first = LocalStore(tmp_path / "client.db", Sealer(key))
    second = LocalStore(tmp_path / "client.db", Sealer(key))
    try:
        first.add_message(PEER, "m1", False, 1, NOW, "hello", "received")
        [m] = second.unshown()
        assert second.mark_shown([m.row]) == 1
        assert first.mark_shown([m.row]) == 0 and first.unshown() == []
    finally:
        first.close()
        second.close()


def test_a_failed_item_is_kept_never_pending_and_can_be_retried(store: LocalStore) -> None:
    store.enqueue("c1", PEER, b"one", False, NOW)
    store.add_message(PEER, "c1", True, 1, NOW, "one", "pending")
    store.enqueue("c2", PEER, b"two", False, NOW)
    assert store.fail("c1", "unknown_recipient", "nobody") == PEER
    assert store.fail("c1", "again", "ignored") is None  # only a queued item fails
    assert [i.client_id for i in store.pending(0, 10)] == ["c2"]
    assert store.outbox_size() == 1
    assert store.outbox_state("c1") == ("failed", "unknown_recipient", "nobody")
    assert store.outgoing_status("c1") == ("failed", NOW)
    entries = {e.client_id: e for e in store.outbox_entries()}
    assert entries["c1"].state == "failed" and entries["c2"].state == "queued"
    assert entries["c1"].content == b"one"
    # A retry queues it after everything else, so an owner past its cursor still sees it.
    before = store.last_seq()
    assert store.retry("c1") and not store.retry("c2")
    assert store.last_seq() > before
    assert [i.client_id for i in store.pending(before, 10)] == ["c1"]
    assert store.outgoing_status("c1") == ("pending", NOW)


def test_cancel_removes_queued_and_failed_items_and_marks_them(store: LocalStore) -> None:
    for cid in ("c1", "c2", "c3"):
        store.enqueue(cid, PEER, cid.encode(), False, NOW)
        store.add_message(PEER, cid, True, 1, NOW, cid, "pending")
    store.fail("c2", "forbidden", "no")
    assert store.cancel(["c1", "nope"]) == ["c1"]
    assert store.outgoing_status("c1") == ("cancelled", NOW)
    assert store.outbox_state("c1") is None
    # An acknowledgement racing the cancel does not turn it into "sent" on screen.
    assert store.set_status(PEER, ["c1"], outgoing=True, status="sent") == []
    assert sorted(store.cancel(None)) == ["c2", "c3"]
    assert store.outbox_entries() == [] and store.pending(0, 10) == []
