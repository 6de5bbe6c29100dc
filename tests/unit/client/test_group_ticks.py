"""Ticks on one's own group texts (group_ticks.py, a part of LocalStore)."""

from __future__ import annotations

import uuid

from porch.client.group_store import GroupMemberRow, LocalGroup
from porch.client.outgoing import queue_outgoing
from porch.client.store import LocalStore
from porch.crypto.content import Text
from porch.crypto.group_state import GroupSettings, GroupState

G = str(uuid.uuid4())
PEER = f"g:{G}"
ME, BOB, CAROL, DAVE = (str(uuid.uuid4()) for _ in range(4))


def _put(store: LocalStore, *members: str) -> None:
    store.put_group(
        LocalGroup(
            group_id=G,
            revision=1,
            role="admin",
            blob=b"\x01sealed",
            settings=GroupSettings(members_can_edit=True, join_approval=False),
            invite=False,
            members=tuple(GroupMemberRow(m, "member") for m in sorted(members)),
            pending=(),
            state=GroupState(name="Climbing"),
            state_revision=1,
        )
    )


def _send(store: LocalStore, body: str) -> str:
    text = Text(f"m-{uuid.uuid4().hex[:12]}", body, 1_700_000_000_000)
    return queue_outgoing(store, PEER, text, device_id=1, me=ME, now=text.ts)


def _status(store: LocalStore, client_id: str) -> str:
    [m] = [m for m in store.history(PEER) if m.client_id == client_id]
    return m.status


def test_a_group_text_is_delivered_once_every_member_answered_and_read_once_all_read(
    store: LocalStore,
) -> None:
    _put(store, ME, BOB, CAROL)
    cid = _send(store, "summit at noon")
    store.set_status(PEER, [cid], outgoing=True, status="sent")
    assert store.group_receipt(BOB, [cid], "delivered") == {}  # carol has not answered
    assert _status(store, cid) == "sent"
    assert store.group_receipt(CAROL, [cid], "read") == {PEER: [cid]}
    assert _status(store, cid) == "delivered"  # bob only delivered
    assert store.group_receipt(BOB, [cid], "read") == {PEER: [cid]}
    assert _status(store, cid) == "read"
    # Done: its rows are gone, and a late or repeated receipt changes nothing.
    assert store._db.execute("SELECT COUNT(*) FROM group_receipts").fetchone() == (0,)
    assert store.group_receipt(CAROL, [cid], "delivered") == {}
    assert _status(store, cid) == "read"


def test_members_who_left_are_not_waited_for_and_later_members_never_count(
    store: LocalStore,
) -> None:
    _put(store, ME, BOB, CAROL)
    cid = _send(store, "before dave")
    _put(store, ME, BOB, DAVE)  # carol left, dave joined after the text
    assert store.group_receipt(DAVE, [cid], "read") == {}  # it never went to dave
    assert store.group_receipt(BOB, [cid], "delivered") == {PEER: [cid]}
    assert _status(store, cid) == "delivered"


def test_a_text_whose_members_all_left_stays_sent_and_a_failed_one_stays_failed(
    store: LocalStore,
) -> None:
    _put(store, ME, BOB)
    gone, failed = _send(store, "hello?"), _send(store, "never left")
    store.set_status(PEER, [gone], outgoing=True, status="sent")
    store.fail(failed, "send_failed", "no")
    store._db.execute(
        "UPDATE messages SET status = 'failed' WHERE client_id = ?", (failed,)
    )  # as the outbox marks a failed text
    _put(store, ME)
    assert store.group_receipt(BOB, [gone, failed], "read") == {}
    assert (_status(store, gone), _status(store, failed)) == ("sent", "failed")


def test_receipts_from_strangers_or_for_unknown_ids_change_nothing(store: LocalStore) -> None:
    _put(store, ME, BOB)
    cid = _send(store, "hi")
    assert store.group_receipt(CAROL, [cid], "read") == {}  # not a recipient
    assert store.group_receipt(BOB, ["nope", "x" * 64], "read") == {}
    assert store.group_receipt(BOB, [cid], "bogus") == {}
    assert _status(store, cid) == "pending"


def test_forgetting_the_group_drops_its_receipt_rows(store: LocalStore) -> None:
    _put(store, ME, BOB)
    _send(store, "bye")
    store.forget_group(G)
    assert store._db.execute("SELECT COUNT(*) FROM group_receipts").fetchone() == (0,)


def _rows(store: LocalStore) -> int:
    return int(store._db.execute("SELECT COUNT(*) FROM group_receipts").fetchone()[0])


def test_rows_go_when_the_text_expires_is_deleted_or_every_member_left(
    store: LocalStore,
) -> None:
    _put(store, ME, BOB, CAROL)
    expiring, deleted, kept = _send(store, "soon gone"), _send(store, "oops"), _send(store, "x")
    assert _rows(store) == 6
    store._db.execute("UPDATE messages SET expires_at = 1 WHERE client_id = ?", (expiring,))
    assert [m.client_id for m in store.expire(now=2)] == [expiring]
    found = store.find_by_id(PEER, deleted)
    assert found is not None
    with store.transaction() as db:
        assert store.mark_deleted(found, db)
    assert _rows(store) == 2  # only the kept text's
    _put(store, ME)  # bob and carol left: the kept text can rise no more
    assert store.group_receipt(BOB, [kept], "read") == {}
    assert _rows(store) == 0 and _status(store, kept) == "pending"


def test_deleting_another_authors_message_with_my_id_keeps_my_rows(store: LocalStore) -> None:
    """A member who reuses the id of my text for theirs, then deletes it, does not freeze my
    ticks (rows are per own text)."""
    _put(store, ME, BOB)
    mine = _send(store, "mine")
    assert store.add_message(PEER, mine, False, 1, 1, "theirs", "received", author=BOB)
    found = store.find_by_id(PEER, mine)
    assert found is not None and not found.message.outgoing
    with store.transaction() as db:
        assert store.mark_deleted(found, db)
    assert _rows(store) == 1
