"""LocalStore: the client's SQLite file, with secrets and bodies sealed by the profile key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from porch.client.store import LocalStore, PeerDeviceRow
from porch.crypto.at_rest import Sealer
from porch.crypto.errors import DecryptError

PEER = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
OTHER = "11111111-2222-4333-8444-555555555555"
NOW = 1_700_000_000_000


def _file_bytes(tmp_path: Path) -> bytes:
    """Everything SQLite wrote: the database and its write-ahead log."""
    return b"".join(p.read_bytes() for p in sorted(tmp_path.glob("client.db*")))


# Outbox --------------------------------------------------------------------------------------


def test_outbox_order_and_dequeue(store: LocalStore) -> None:
    for i in range(5):
        store.enqueue(f"c{i}", PEER if i % 2 else OTHER, f"content {i}".encode(), i == 3, NOW + i)
    assert store.outbox_size() == 5
    items = store.pending(0, 100)
    assert [i.client_id for i in items] == ["c0", "c1", "c2", "c3", "c4"]
    assert [i.content for i in items] == [f"content {i}".encode() for i in range(5)]
    assert [i.ephemeral for i in items] == [False, False, False, True, False]
    assert items[1].recipient == PEER and items[0].recipient == OTHER
    seqs = [i.seq for i in items]
    assert seqs == sorted(seqs)

    # Paging by sequence number: after a cursor, with a limit.
    page = store.pending(seqs[1], 2)
    assert [i.client_id for i in page] == ["c2", "c3"]
    assert store.pending(seqs[-1], 10) == []

    assert store.dequeue("c2") == OTHER
    assert store.dequeue("c2") is None
    assert store.dequeue("nope") is None
    assert [i.client_id for i in store.pending(0, 100)] == ["c0", "c1", "c3", "c4"]
    assert store.outbox_size() == 4

    # A later enqueue goes to the back, whatever was removed.
    store.enqueue("c5", PEER, b"x", False, NOW)
    assert [i.client_id for i in store.pending(0, 100)][-1] == "c5"


def test_outbox_client_ids_are_unique(store: LocalStore) -> None:
    import sqlite3

    store.enqueue("c1", PEER, b"a", False, NOW)
    with pytest.raises(sqlite3.IntegrityError):
        store.enqueue("c1", PEER, b"b", False, NOW)


def test_outbox_persists(tmp_path: Path, key: bytes) -> None:
    s = LocalStore(tmp_path / "client.db", Sealer(key))
    s.enqueue("c1", PEER, b"queued", False, NOW)
    s.close()
    again = LocalStore(tmp_path / "client.db", Sealer(key))
    try:
        assert [(i.client_id, i.content) for i in again.pending(0, 10)] == [("c1", b"queued")]
    finally:
        again.close()


def test_outbox_content_is_bound_to_its_row(store: LocalStore) -> None:
    store.enqueue("c1", PEER, b"one", False, NOW)
    store.enqueue("c2", PEER, b"two", False, NOW)
    # Swap the sealed contents: the AAD names the client id, so opening fails.
    db = store._db
    a = db.execute("SELECT content FROM outbox WHERE client_id = 'c1'").fetchone()[0]
    b = db.execute("SELECT content FROM outbox WHERE client_id = 'c2'").fetchone()[0]
    db.execute("UPDATE outbox SET content = ? WHERE client_id = 'c1'", (b,))
    db.execute("UPDATE outbox SET content = ? WHERE client_id = 'c2'", (a,))
    with pytest.raises(DecryptError):
        store.pending(0, 10)


# Messages ------------------------------------------------------------------------------------


def test_add_message_dedupes_by_peer_direction_and_client_id(store: LocalStore) -> None:
    assert store.add_message(PEER, "m1", False, 1, NOW, "hello", "received") is True
    assert store.add_message(PEER, "m1", False, 2, NOW + 1, "resent", "received") is False
    # Same id, other direction or other peer: different messages.
    assert store.add_message(PEER, "m1", True, 1, NOW, "mine", "pending") is True
    assert store.add_message(OTHER, "m1", False, 1, NOW, "other peer", "received") is True
    history = store.history(PEER)
    assert [(m.client_id, m.outgoing, m.text) for m in history] == [
        ("m1", False, "hello"),  # the first copy is kept
        ("m1", True, "mine"),
    ]
    assert [m.text for m in store.history(OTHER)] == ["other peer"]


def test_add_message_inside_a_transaction(store: LocalStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as db:
        store.add_message(PEER, "m1", False, 1, NOW, "rolled back", "received", db)
        raise RuntimeError("abort")
    assert store.history(PEER) == []
    with store.transaction() as db:
        store.add_message(PEER, "m1", False, 1, NOW, "kept", "received", db)
    assert [m.text for m in store.history(PEER)] == ["kept"]


def test_set_status_only_raises(store: LocalStore) -> None:
    store.add_message(PEER, "a", True, 1, NOW, "a", "pending")
    store.add_message(PEER, "b", True, 1, NOW, "b", "pending")

    def status() -> dict[str, str]:
        return {m.client_id: m.status for m in store.history(PEER)}

    assert store.set_status(PEER, ["a", "b"], True, "sent", ts=NOW + 5) == ["a", "b"]
    assert status() == {"a": "sent", "b": "sent"}
    assert all(m.ts == NOW + 5 for m in store.history(PEER))  # the server's timestamp
    assert store.set_status(PEER, ["a"], True, "delivered") == ["a"]
    assert store.set_status(PEER, ["a"], True, "read") == ["a"]
    assert store.set_status(PEER, ["b"], True, "read") == ["b"]  # skipping a step is fine
    assert status() == {"a": "read", "b": "read"}

    # Never back down, and no change is reported as none.
    assert store.set_status(PEER, ["a", "b"], True, "delivered") == []
    assert store.set_status(PEER, ["a", "b"], True, "sent") == []
    assert store.set_status(PEER, ["a"], True, "read") == []
    assert status() == {"a": "read", "b": "read"}
    assert [m.ts for m in store.history(PEER)] == [NOW + 5, NOW + 5]


def test_set_status_is_scoped(store: LocalStore) -> None:
    store.add_message(PEER, "x", True, 1, NOW, "out", "sent")
    store.add_message(PEER, "x", False, 1, NOW, "in", "received")
    store.add_message(OTHER, "x", True, 1, NOW, "out to other", "sent")
    assert store.set_status(PEER, ["x", "missing"], True, "delivered") == ["x"]
    by_dir = {m.outgoing: m.status for m in store.history(PEER)}
    assert by_dir == {True: "delivered", False: "received"}
    assert store.history(OTHER)[0].status == "sent"
    assert store.set_status(PEER, ["x"], False, "read") == ["x"]
    assert {m.outgoing: m.status for m in store.history(PEER)}[False] == "read"


def test_history_decrypts_in_order_with_limit(store: LocalStore) -> None:
    texts = ["first", "zweite 🙂", "", "x" * 5000, "last"]
    for i, text in enumerate(texts):
        store.add_message(PEER, f"m{i}", i % 2 == 0, 3, NOW + i, text, "sent")
    history = store.history(PEER)
    assert [m.text for m in history] == texts
    assert [m.client_id for m in history] == [f"m{i}" for i in range(5)]
    m = history[1]
    assert (m.peer, m.outgoing, m.sender_device, m.ts, m.status) == (
        PEER,
        False,
        3,
        NOW + 1,
        "sent",
    )
    # A limit keeps the newest, still oldest first.
    assert [m.text for m in store.history(PEER, limit=2)] == ["x" * 5000, "last"]
    assert store.history(OTHER) == []


def test_history_needs_the_right_key(tmp_path: Path, key: bytes) -> None:
    s = LocalStore(tmp_path / "client.db", Sealer(key))
    s.add_message(PEER, "m1", False, 1, NOW, "secret", "received")
    s.close()
    wrong = LocalStore(tmp_path / "client.db", Sealer(os.urandom(32)))
    try:
        with pytest.raises(DecryptError):
            wrong.history(PEER)
    finally:
        wrong.close()


def test_conversations(store: LocalStore) -> None:
    store.add_message(PEER, "a", False, 1, NOW, "hi", "received")
    store.add_message(PEER, "b", False, 1, NOW + 1, "there", "received")
    store.add_message(OTHER, "c", True, 1, NOW + 2, "yo", "sent")
    store.set_status(PEER, ["a"], False, "read")
    convs = store.conversations()
    assert [(c.peer, c.last_text, c.last_ts, c.unread) for c in convs] == [
        (OTHER, "yo", NOW + 2, 0),
        (PEER, "there", NOW + 1, 1),
    ]


def test_bodies_are_not_stored_in_plaintext(tmp_path: Path, store: LocalStore) -> None:
    body = "the eagle lands at midnight"
    queued = "meet me by the old oak tree"
    secret = b"hunter2-device-password"
    store.add_message(PEER, "m1", False, 1, NOW, body, "received")
    store.add_message(PEER, "m2", True, 1, NOW, body, "pending")
    store.enqueue("m3", PEER, queued.encode(), False, NOW)
    store.put_secret("password", secret)
    store.set_status(PEER, ["m2"], True, "sent")
    assert store.history(PEER)[0].text == body  # it is there...
    assert store.get_secret("password") == secret
    raw = _file_bytes(tmp_path)
    assert raw  # ...and the files are not empty...
    for plaintext in (body.encode(), body.encode("utf-16-le"), queued.encode(), secret):
        assert plaintext not in raw  # ...but nothing readable is in them
    store.close()
    raw = _file_bytes(tmp_path)  # after the checkpoint on close, too
    for plaintext in (body.encode(), queued.encode(), secret):
        assert plaintext not in raw


def test_dequeued_content_is_not_left_in_the_file(tmp_path: Path, store: LocalStore) -> None:
    store.enqueue("m1", PEER, b"to be removed", False, NOW)
    sealed = store._db.execute("SELECT content FROM outbox").fetchone()[0]
    store.dequeue("m1")
    store.close()
    assert bytes(sealed) not in _file_bytes(tmp_path)  # secure_delete overwrote it


# Secrets, contacts, devices, seen envelopes --------------------------------------------------


def test_secrets_and_pickles(store: LocalStore) -> None:
    assert store.get_secret("password") is None
    store.put_secret("password", b"pw")
    store.put_secret("password", b"pw2")
    assert store.get_secret("password") == b"pw2"
    store.put_pickle("olm_account", "opaque-pickle")
    assert store.get_pickle("olm_account") == "opaque-pickle"
    assert store.get_pickle("missing") is None
    # A sealed secret cannot be read back under another name.
    sealed = store._db.execute("SELECT value FROM kv WHERE name = 'password'").fetchone()[0]
    store._db.execute("INSERT INTO kv (name, value) VALUES ('other', ?)", (sealed,))
    with pytest.raises(DecryptError):
        store.get_secret("other")


def test_sessions(store: LocalStore) -> None:
    store.save_sessions({(PEER, 1): "p1", (PEER, 2): "p2"})
    store.save_sessions({(PEER, 1): "p1b"})
    assert sorted(store.all_sessions()) == [(PEER, 1, "p1b"), (PEER, 2, "p2")]
    store.delete_sessions(PEER, 1)
    assert store.all_sessions() == [(PEER, 2, "p2")]


def test_contacts(store: LocalStore) -> None:
    assert store.contact_label(PEER) == PEER[:8]
    store.set_contact(PEER, phone="+14155550100")
    assert store.contact_label(PEER) == "+14155550100"
    store.set_contact(PEER, username="alice", master_key="mk")
    assert store.contact_label(PEER) == "@alice"
    store.set_contact(PEER, master_key=None)  # None keeps what is known
    assert store.contact_master_key(PEER) == "mk"
    assert store.find_contact(phone="+14155550100") == PEER
    assert store.find_contact(username="alice") == PEER
    assert store.find_contact(username="bob") is None
    assert store.contact_master_key(OTHER) is None


def test_peer_devices(store: LocalStore) -> None:
    rows = [PeerDeviceRow(PEER, d, 100 + d, f"c{d}", f"e{d}") for d in (2, 1)]
    store.put_peer_devices(PEER, rows, replace=False)
    assert [r.device_id for r in store.peer_devices(PEER)] == [1, 2]
    store.save_sessions({(PEER, 1): "s1", (PEER, 2): "s2"})
    store.drop_peer_device(PEER, 2)
    assert [r.device_id for r in store.peer_devices(PEER)] == [1]
    assert store.all_sessions() == [(PEER, 1, "s1")]
    store.put_peer_devices(PEER, [PeerDeviceRow(PEER, 3, 1, "c", "e")], replace=True)
    assert [r.device_id for r in store.peer_devices(PEER)] == [3]


def test_seen_envelopes(store: LocalStore) -> None:
    assert not store.seen(1, NOW)
    store.mark_seen(1, NOW)
    store.mark_seen(1, NOW)
    store.mark_seen(2, NOW + 10)
    assert store.seen(1, NOW) and store.seen(2, NOW + 10)
    # The same id from a rebuilt server database is a different envelope.
    assert not store.seen(1, NOW + 99)
    store.prune_seen(NOW + 10)
    assert not store.seen(1, NOW)
    assert store.seen(2, NOW + 10)


# Retry requests ------------------------------------------------------------------------------


def test_find_outgoing_by_server_ts_or_client_id(store: LocalStore) -> None:
    store.add_message(PEER, "m1", True, 1, NOW, "first", "pending")
    store.add_message(PEER, "m2", True, 1, NOW + 1, "second", "pending")
    store.add_message(PEER, "in", False, 1, NOW + 9, "theirs", "received")
    store.set_status(PEER, ["m1"], outgoing=True, status="sent", ts=NOW + 9)  # the server's ts
    found = store.find_outgoing(PEER, None, NOW + 9)
    assert found is not None and (found.client_id, found.text) == ("m1", "first")
    assert found.outgoing and found.status == "sent"
    by_id = store.find_outgoing(PEER, "m2", 0)
    assert by_id is not None and by_id.text == "second"
    assert store.find_outgoing(PEER, None, NOW) is None  # replaced by the server's ts
    assert store.find_outgoing(PEER, "in", 0) is None  # received, not sent
    assert store.find_outgoing(OTHER, None, NOW + 9) is None


def test_resends_are_counted_per_message(store: LocalStore) -> None:
    assert store.resend_count(PEER, "m1") == 0
    assert store.count_resend(PEER, "m1") == 0
    assert store.count_resend(PEER, "m1") == 1
    assert store.resend_count(PEER, "m1") == 2
    assert store.resend_count(PEER, "m2") == 0
    assert store.resend_count(OTHER, "m1") == 0


def test_an_old_profile_is_migrated_and_its_messages_count_as_shown(
    tmp_path: Path, key: bytes
) -> None:
    import sqlite3

    from porch.client.store import SCHEMA

    db = sqlite3.connect(tmp_path / "client.db")
    for statement in SCHEMA:  # the schema as the first release created it
        db.execute(statement)
    db.execute(
        "INSERT INTO outbox (client_id, recipient, content, ephemeral, created)"
        " VALUES ('old', ?, x'00', 0, 1)",
        (PEER,),
    )
    db.execute(
        "INSERT INTO messages (peer, client_id, outgoing, sender_device, ts, body, status)"
        " VALUES (?, 'seen-before', 0, 1, 1, x'00', 'received')",
        (PEER,),
    )
    db.commit()
    db.close()
    store = LocalStore(tmp_path / "client.db", Sealer(key))
    try:
        assert store.unshown() == []
        assert store.outbox_state("old") == ("queued", None, None)
    finally:
        store.close()
    LocalStore(tmp_path / "client.db", Sealer(key)).close()  # a second open migrates nothing


def test_public_names_are_cached_once_fetched(store: LocalStore) -> None:
    assert not store.contact_named(PEER)
    store.set_contact_name(PEER, None, None)  # the server had no public name to give
    assert store.contact_named(PEER) and store.contact_label(PEER) == PEER[:8]
    store.set_contact_name(OTHER, "bob", "+14155550100")
    assert store.contact_label(OTHER) == "@bob"
