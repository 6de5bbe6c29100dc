"""The local group tables (group_store.py, a part of LocalStore)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

from porch.client.group_store import GroupMemberRow, LocalGroup
from porch.client.store import LocalStore
from porch.crypto.at_rest import Sealer
from porch.crypto.group_state import GroupSettings, GroupState

G = str(uuid.uuid4())
A, B = sorted((str(uuid.uuid4()), str(uuid.uuid4())))  # members come back in id order


def _group(**changes: object) -> LocalGroup:
    fields: dict[str, object] = {
        "group_id": G,
        "revision": 3,
        "role": "admin",
        "blob": b"\x01sealed",
        "settings": GroupSettings(members_can_edit=False, join_approval=True),
        "invite": True,
        "members": (GroupMemberRow(A, "admin"), GroupMemberRow(B, "member")),
        "pending": (B,),
        "state": GroupState(name="Climbing", description="secret plans"),
        "state_revision": 3,
    }
    fields.update(changes)
    return LocalGroup(**fields)  # type: ignore[arg-type]


def test_a_group_round_trips_and_its_state_is_sealed_at_rest(
    store: LocalStore, tmp_path: Path
) -> None:
    store.put_group(_group())
    assert store.get_group(G) == _group()
    assert store.group_ids() == [G]
    raw = (tmp_path / "client.db").read_bytes()
    assert b"secret plans" not in raw and b"Climbing" not in raw
    store.put_group(
        _group(revision=4, members=(GroupMemberRow(A, "admin"),), pending=(), state=None)
    )
    got = store.get_group(G)
    assert got is not None and got.revision == 4 and got.state is None
    assert store.group_members(G) == [GroupMemberRow(A, "admin")] and got.pending == ()


def test_state_keys_are_sealed_kept_first_and_found_by_epoch(
    store: LocalStore, tmp_path: Path
) -> None:
    k0, k1 = os.urandom(32), os.urandom(32)
    assert store.latest_state_key(G) is None
    assert store.put_state_key(G, 0, k0) and store.put_state_key(G, 1, k1)
    assert not store.put_state_key(G, 1, os.urandom(32))
    assert store.state_key(G, 0) == k0 and store.latest_state_key(G) == (1, k1)
    assert k1 not in (tmp_path / "client.db").read_bytes()


def test_outbound_session_rotation_mark_and_shared_devices(store: LocalStore) -> None:
    assert store.outbound_session(G) == (None, False)
    store.mark_rotate(G)
    assert store.outbound_session(G) == (None, True)
    store.save_outbound_session(G, "p1", new=True)
    assert store.outbound_session(G) == ("p1", False)
    store.add_shared(G, "s1", [(A, 1), (B, 2)])
    store.add_shared(G, "s1", [(A, 1)])
    assert store.shared_with(G, "s1") == {(A, 1), (B, 2)}
    store.save_outbound_session(G, "p2", new=False)
    assert store.shared_with(G, "s1") == {(A, 1), (B, 2)}
    store.mark_rotate(G)
    assert store.outbound_session(G) == ("p2", True)
    store.save_outbound_session(G, "p3", new=True)  # a new session: shared with nobody yet
    assert store.outbound_session(G) == ("p3", False) and store.shared_with(G, "s1") == set()


def test_inbound_sessions_are_keyed_by_group_sender_device_and_session(
    store: LocalStore,
) -> None:
    store.save_inbound_sessions({(G, A, 1, "s"): "pickle"})
    assert store.inbound_session(G, A, 1, "s") == "pickle"
    assert store.inbound_session(G, A, 2, "s") is None
    assert store.inbound_session(str(uuid.uuid4()), A, 1, "s") is None
    assert store.inbound_session_known("s") and not store.inbound_session_known("t")


def test_forget_group_drops_everything_about_it(store: LocalStore) -> None:
    store.put_group(_group())
    store.put_state_key(G, 0, os.urandom(32))
    store.save_outbound_session(G, "p", new=True)
    store.add_shared(G, "s", [(A, 1)])
    store.save_inbound_sessions({(G, A, 1, "s"): "p"})
    store.forget_group(G)
    assert store.get_group(G) is None and store.latest_state_key(G) is None
    assert store.outbound_session(G) == (None, False) and store.shared_with(G, "s") == set()
    assert not store.inbound_session_known("s")


def test_an_existing_profile_gains_the_group_tables(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "old.db"
    LocalStore(path, Sealer(key)).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE groups")
    db.commit()
    db.close()
    reopened = LocalStore(path, Sealer(key))
    reopened.put_group(_group())
    assert reopened.get_group(G) is not None
    reopened.close()
