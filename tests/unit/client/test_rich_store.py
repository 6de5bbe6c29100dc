"""Rich messages in the local store: extras, reactions, edits, deletes, timers, expiry and the
downloads table (issue 8 spec §4)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from porch.client import store as store_module
from porch.client.history import MAX_EDITS, MessageExtra, body_aad
from porch.client.rich_store import DOWNLOADS_TABLE, RICH_MIGRATION, StoredMessage, row_author
from porch.client.store import MIGRATIONS, LocalStore
from porch.crypto.at_rest import Sealer
from porch.crypto.errors import DecryptError
from porch.crypto.rich import Attachment, Quote

ME = "aaaaaaaa-0000-4000-8000-000000000001"
PEER = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
OTHER = "11111111-2222-4333-8444-555555555555"
GROUP = "g:6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
NOW = 1_700_000_000_000
PHOTO = Attachment(
    id="AAECAwQFBgcICQoLDA0ODw",
    key=bytes(range(64)),
    digest=bytes(32),
    size=1234,
    content_type="image/jpeg",
    name="secret-beach.jpg",
    width=640,
    height=480,
)


def _received(store: LocalStore, cid: str = "m1", **kw: object) -> StoredMessage:
    assert store.add_message(PEER, cid, False, 1, NOW, "hello there", "received", **kw)  # type: ignore[arg-type]
    found = store.find_message(PEER, PEER, cid, ME)
    assert found is not None
    return found


def _download(store: LocalStore, tmp_path: Path, media_id: str, peer: str, cid: str) -> Path:
    path = tmp_path / f"{media_id}.bin"
    path.write_bytes(b"plaintext")
    with store.transaction() as db:
        db.execute(
            "INSERT INTO downloads (media_id, path, peer, client_id, created) VALUES (?,?,?,?,?)",
            (media_id, str(path), peer, cid, NOW),
        )
    return path


def test_extras_round_trip_through_history(store: LocalStore) -> None:
    extra = MessageExtra(attachments=(PHOTO,), reply=Quote("m0", ME, "earlier"), forwarded=True)
    _received(store, extra=extra, expires_at=NOW + 60_000)
    [m] = store.history(PEER)
    assert m.attachments == (PHOTO,)
    assert m.reply == Quote("m0", ME, "earlier")
    assert m.forwarded and not m.edited and not m.deleted
    assert m.expires_at == NOW + 60_000
    assert m.reactions == () and m.edits == ()


def test_a_plain_message_stores_no_extra(store: LocalStore) -> None:
    _received(store)
    [(extra,)] = store._db.execute("SELECT extra FROM messages").fetchall()
    assert extra is None
    [m] = store.history(PEER)
    assert m.attachments == () and m.reply is None and m.expires_at is None


def test_the_extra_is_sealed_and_bound_to_its_row(
    store: LocalStore, tmp_path: Path, key: bytes
) -> None:
    _received(store, "m1", extra=MessageExtra(attachments=(PHOTO,)))
    _received(store, "m2")
    store._db.execute("PRAGMA wal_checkpoint(FULL)")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("client.db*"))
    assert b"secret-beach" not in raw and b"image/jpeg" not in raw
    # Moving m1's extra onto m2 does not open there.
    store._db.execute(
        "UPDATE messages SET extra = (SELECT extra FROM messages WHERE client_id = 'm1')"
        " WHERE client_id = 'm2'"
    )
    with pytest.raises(DecryptError):
        store.history(PEER)


def test_row_author_maps_authors_to_rows() -> None:
    assert row_author(PEER, ME, ME) == (1, "")
    assert row_author(PEER, PEER, ME) == (0, "")
    assert row_author(PEER, OTHER, ME) is None  # nobody else writes in a 1:1 conversation
    assert row_author(GROUP, ME, ME) == (1, ME)
    assert row_author(GROUP, OTHER, ME) == (0, OTHER)


def test_find_message_by_author(store: LocalStore) -> None:
    store.add_message(PEER, "m1", True, 1, NOW, "mine", "sent")
    store.add_message(PEER, "m1", False, 1, NOW, "theirs", "received")
    mine, theirs = store.find_message(PEER, ME, "m1", ME), store.find_message(PEER, PEER, "m1", ME)
    assert mine is not None and mine.message.text == "mine" and mine.message.outgoing
    assert theirs is not None and theirs.message.text == "theirs"
    assert store.find_message(PEER, OTHER, "m1", ME) is None
    assert store.find_message(PEER, PEER, "nope", ME) is None


def test_one_reaction_per_reactor_replaced_and_removed(store: LocalStore) -> None:
    found = _received(store)
    with store.transaction() as db:
        assert store.set_reaction(found.row, PEER, "👍", NOW + 1, db)
        assert store.set_reaction(found.row, ME, "🎉", NOW + 2, db)
        assert not store.set_reaction(found.row, PEER, "👍", NOW + 3, db)  # no change
        assert store.set_reaction(found.row, PEER, "❤️", NOW + 4, db)  # replaced
    [m] = store.history(PEER)
    assert sorted(m.reactions) == sorted([(PEER, "❤️"), (ME, "🎉")])
    with store.transaction() as db:
        assert store.set_reaction(found.row, PEER, "", NOW + 5, db)  # removed
        # An older reaction arriving late does not come back.
        assert not store.set_reaction(found.row, PEER, "😡", NOW + 4, db)
    [m] = store.history(PEER)
    assert m.reactions == ((ME, "🎉"),)
    found_again = store.find_message(PEER, PEER, "m1", ME)
    assert found_again is not None and found_again.message.reactions == ((ME, "🎉"),)


def test_edits_keep_earlier_versions_in_order(store: LocalStore) -> None:
    found = _received(store)
    with store.transaction() as db:
        assert store.apply_edit(found, "second", NOW + 10, db)
    found = store.find_message(PEER, PEER, "m1", ME)  # type: ignore[assignment]
    with store.transaction() as db:
        assert store.apply_edit(found, "third", NOW + 30, db)
    found = store.find_message(PEER, PEER, "m1", ME)  # type: ignore[assignment]
    with store.transaction() as db:
        # An edit made before the last one arrives late: it goes into the history.
        assert store.apply_edit(found, "between", NOW + 20, db)
        assert not store.apply_edit(found, "third", NOW + 30, db)  # the same version again
    [m] = store.history(PEER)
    assert m.text == "third" and m.edited
    assert m.edits == ((NOW, "hello there"), (NOW + 10, "second"), (NOW + 20, "between"))


def test_edits_stop_at_the_limit(store: LocalStore) -> None:
    found = _received(store)
    for i in range(MAX_EDITS):
        with store.transaction() as db:
            assert store.apply_edit(found, f"v{i}", NOW + i + 1, db)
        found = store.find_message(PEER, PEER, "m1", ME)  # type: ignore[assignment]
    with store.transaction() as db:
        assert not store.apply_edit(found, "one too many", NOW + 999, db)
    [m] = store.history(PEER)
    assert m.text == f"v{MAX_EDITS - 1}" and len(m.edits) == MAX_EDITS


def test_delete_leaves_a_marker_and_removes_files(store: LocalStore, tmp_path: Path) -> None:
    found = _received(store, extra=MessageExtra(attachments=(PHOTO,), reply=Quote("m0", ME)))
    path = _download(store, tmp_path, PHOTO.id, PEER, "m1")
    # Another message's download with the same media id elsewhere stays.
    other = tmp_path / "other.bin"
    other.write_bytes(b"x")
    with store.transaction() as db:
        store.set_reaction(found.row, ME, "👍", NOW, db)
        assert store.mark_deleted(found, db)
    assert not path.exists() and other.exists()
    [m] = store.history(PEER)
    assert m.deleted and m.text == "" and m.attachments == () and m.reply is None
    assert m.reactions == () and not m.edited
    assert store._db.execute("SELECT COUNT(*) FROM downloads").fetchone()[0] == 0
    found = store.find_message(PEER, PEER, "m1", ME)  # type: ignore[assignment]
    with store.transaction() as db:
        assert not store.mark_deleted(found, db)
        assert not store.apply_edit(found, "resurrected", NOW + 5, db)


def test_a_delete_removes_only_its_own_pointers_files(store: LocalStore, tmp_path: Path) -> None:
    # A group member reusing someone else's client id for a message without that pointer.
    store.add_message(GROUP, "m1", False, 1, NOW, "victim", "received", author=PEER)
    store.add_message(GROUP, "m1", False, 1, NOW, "attacker", "received", author=OTHER)
    path = _download(store, tmp_path, PHOTO.id, GROUP, "m1")
    attacker = store.find_message(GROUP, OTHER, "m1", ME)
    assert attacker is not None
    with store.transaction() as db:
        assert store.mark_deleted(attacker, db)
    assert path.exists()
    victim = store.find_message(GROUP, PEER, "m1", ME)
    assert victim is not None and victim.message.text == "victim" and not victim.message.deleted


def test_timers_are_last_writer_wins(store: LocalStore) -> None:
    assert store.timer(PEER) == 0
    with store.transaction() as db:
        assert store.set_timer(PEER, 3600, NOW, db)
        assert not store.set_timer(PEER, 3600, NOW + 1, db)  # unchanged
        assert not store.set_timer(PEER, 60, NOW - 1, db)  # older
        assert store.set_timer(PEER, 0, NOW + 2, db)
    assert store.timer(PEER) == 0
    with store.transaction() as db:
        store.set_timer(PEER, 86400, NOW + 3, db)
    assert store.timer(PEER) == 86400 and store.timer(OTHER) == 0


def test_expire_removes_messages_reactions_and_files(store: LocalStore, tmp_path: Path) -> None:
    extra = MessageExtra(attachments=(PHOTO,))
    gone = _received(store, "m1", extra=extra, expires_at=NOW + 1000)
    _received(store, "m2", expires_at=NOW + 5000)
    _received(store, "m3")
    path = _download(store, tmp_path, PHOTO.id, PEER, "m1")
    with store.transaction() as db:
        store.set_reaction(gone.row, ME, "👍", NOW, db)
    assert store.expire(NOW + 999) == []
    [removed] = store.expire(NOW + 1000)
    assert removed.client_id == "m1" and not path.exists()
    assert [m.client_id for m in store.history(PEER)] == ["m2", "m3"]
    assert store._db.execute("SELECT COUNT(*) FROM reactions").fetchone()[0] == 0
    assert [m.client_id for m in store.expire(NOW + 10**9)] == ["m2"]
    assert [m.client_id for m in store.history(PEER)] == ["m3"]


def test_migration_upgrades_an_older_store(
    tmp_path: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile made before issue 8 gets the new columns and tables, its messages intact."""
    path = tmp_path / "client.db"
    before = MIGRATIONS[: MIGRATIONS.index(RICH_MIGRATION)]
    monkeypatch.setattr(store_module, "MIGRATIONS", before)
    store = LocalStore(path, Sealer(key))
    with pytest.raises(sqlite3.OperationalError):
        store._db.execute("SELECT expires_at FROM messages")
    store._db.execute(
        "INSERT INTO messages (peer, client_id, outgoing, sender_device, ts, body, status)"
        " VALUES (?, 'old', 0, 1, ?, ?, 'received')",
        (PEER, NOW, Sealer(key).seal(b"from before", aad=body_aad(PEER, 0, "old", None))),
    )
    store.close()
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    store = LocalStore(path, Sealer(key))
    [m] = store.history(PEER)
    assert m.text == "from before" and not m.edited and not m.deleted and m.expires_at is None
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    for table in ("reactions", "timers", "downloads"):
        assert store._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0
    store.close()


def test_the_downloads_statement_is_the_shared_one(store: LocalStore) -> None:
    assert DOWNLOADS_TABLE == (
        "CREATE TABLE IF NOT EXISTS downloads (media_id TEXT PRIMARY KEY, path TEXT NOT NULL,"
        " peer TEXT NOT NULL, client_id TEXT NOT NULL, created INTEGER NOT NULL)"
    )
    store._db.execute(DOWNLOADS_TABLE)  # helper C runs it too: harmless on an existing table
