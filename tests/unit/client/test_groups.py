"""The group façade's decisions that need no server (porch.client.groups, group_view):
naming a group by id, prefix or name, opening states, group texts in the outbox and history,
and group changes in words."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any, NoReturn

import pytest

from porch.client.errors import UsageError
from porch.client.events import GroupUpdated
from porch.client.group_api import Group, GroupMember
from porch.client.group_store import GroupMemberRow, LocalGroup
from porch.client.group_view import describe_update, update_record
from porch.client.groups import Groups, group_peer
from porch.client.store import MIGRATIONS, LocalStore
from porch.crypto.at_rest import Sealer
from porch.crypto.content import Text, decode_content
from porch.crypto.group_state import GroupSettings, GroupState, seal_group_state

ME, BOB = str(uuid.uuid4()), str(uuid.uuid4())


def _unused(*_: Any) -> NoReturn:
    raise AssertionError("no server call expected")


def _groups(store: LocalStore) -> Groups:
    return Groups(
        lambda: store,
        _unused,
        None,  # type: ignore[arg-type]
        ME,
        1,
        _unused,
        lambda: None,
        lambda: 1000,
    )


def _put(store: LocalStore, gid: str, name: str | None, members: tuple[str, ...] = (ME,)) -> None:
    state = GroupState(name) if name else None
    store.put_group(
        LocalGroup(
            gid,
            1,
            "admin",
            b"\x01blob",
            GroupSettings(),
            False,
            tuple(GroupMemberRow(m, "admin" if m == ME else "member") for m in members),
            state=state,
            state_revision=1 if state else 0,
        )
    )


def test_a_group_is_named_by_id_prefix_or_name(store: LocalStore) -> None:
    a, b = "abc12345-0000-4000-8000-000000000000", "abd12345-0000-4000-8000-000000000000"
    _put(store, a, "Hikers")
    _put(store, b, "Climbers")
    groups = _groups(store)
    assert groups.find("abc") == a and groups.find("ABD1") == b
    assert groups.find(f"g:{a}") == a and groups.find("hikers") == a
    unknown = str(uuid.uuid4())
    assert groups.find(unknown) == unknown  # a full id goes to the server as it is
    with pytest.raises(UsageError, match="matches 2 groups"):
        groups.find("ab")
    with pytest.raises(UsageError, match="no group of yours matches"):
        groups.find("ffff")
    with pytest.raises(UsageError, match="name a group"):
        groups.find("  ")


def test_two_groups_of_one_name_are_ambiguous(store: LocalStore) -> None:
    _put(store, str(uuid.uuid4()), "Twins")
    _put(store, str(uuid.uuid4()), "Twins")
    with pytest.raises(UsageError, match="matches 2 groups"):
        _groups(store).find("Twins")


def test_a_group_text_is_queued_for_the_group_and_kept_with_its_author(
    store: LocalStore,
) -> None:
    gid = str(uuid.uuid4())
    _put(store, gid, "Hikers")
    client_id = _groups(store).send_text(gid[:6], "hello all")
    [item] = store.pending(0, 10)
    assert item.recipient == group_peer(gid) and item.client_id == client_id
    content = decode_content(item.content)
    assert isinstance(content, Text) and content.group == gid and content.body == "hello all"
    [row] = store.history(group_peer(gid))
    assert row.author == ME and row.outgoing and row.text == "hello all"


def test_only_members_send_to_a_group(store: LocalStore) -> None:
    gid = str(uuid.uuid4())
    _put(store, gid, "Left", members=(BOB,))
    with pytest.raises(UsageError, match="not a member"):
        _groups(store).send_text(gid, "hi")
    assert store.pending(0, 10) == []


def test_a_state_opens_with_its_key_at_its_state_revision(store: LocalStore) -> None:
    gid, key = str(uuid.uuid4()), os.urandom(32)
    store.put_state_key(gid, 0, key)
    blob = seal_group_state(key, gid, 2, 0, GroupState("Hikers", "up hills"))
    group = Group(gid, 5, blob, GroupSettings(), (GroupMember(ME, "admin"),), (), False, 2)
    local = _groups(store)._to_local(group, None)
    assert local.state == GroupState("Hikers", "up hills") and local.state_revision == 2
    # Served under another revision than it was sealed for: not opened, not believed.
    moved = Group(gid, 5, blob, GroupSettings(), (GroupMember(ME, "admin"),), (), False, 3)
    assert _groups(store)._to_local(moved, None).state is None


def test_messages_of_two_authors_with_one_client_id_both_stay(store: LocalStore) -> None:
    peer = group_peer(str(uuid.uuid4()))
    assert store.add_message(peer, "same", False, 1, 10, "from me", "received", author=ME)
    assert store.add_message(peer, "same", False, 1, 11, "from bob", "received", author=BOB)
    assert not store.add_message(peer, "same", False, 1, 11, "again", "received", author=BOB)
    rows = store.history(peer)
    assert [(r.author, r.text) for r in rows] == [(ME, "from me"), (BOB, "from bob")]
    assert [m.author for m in store.unshown()] == [ME, BOB]
    store.add_message(BOB, "x", False, 1, 12, "one to one", "received")
    assert store.history(BOB)[0].author is None


def test_an_older_store_gains_the_author_column(tmp_path: Path) -> None:
    key = os.urandom(32)
    db = sqlite3.connect(tmp_path / "client.db")
    # The messages table as before the author migration, with one row in it.
    db.execute(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL,"
        " client_id TEXT NOT NULL, outgoing INTEGER NOT NULL, sender_device INTEGER NOT NULL,"
        " ts INTEGER NOT NULL, body BLOB NOT NULL, status TEXT NOT NULL,"
        " UNIQUE (peer, outgoing, client_id))"
    )
    body = Sealer(key).seal(b"old", aad=f"msg:{BOB}:0:c1".encode())
    db.execute(
        "INSERT INTO messages (peer, client_id, outgoing, sender_device, ts, body, status)"
        " VALUES (?, 'c1', 0, 1, 5, ?, 'received')",
        (BOB, body),
    )
    db.commit()
    db.close()
    store = LocalStore(tmp_path / "client.db", Sealer(key))
    try:
        [row] = store.history(BOB)
        assert row.text == "old" and row.author is None
        version = store._db.execute("PRAGMA user_version").fetchone()[0]
        assert version == len(MIGRATIONS)
    finally:
        store.close()


def test_group_changes_in_words() -> None:
    names = {ME: "you", BOB: "@bob"}
    gid = str(uuid.uuid4())

    def words(action: str, *targets: str) -> str:
        return describe_update(
            GroupUpdated(gid, 2, ME, action, targets), names.__getitem__, "Hikers"
        )

    assert words("add", BOB) == "you added @bob to Hikers"
    assert words("remove", BOB) == "you removed @bob from Hikers"
    assert words("create", BOB) == "you created Hikers with @bob"
    assert words("leave") == "you left Hikers"
    assert words("promote", BOB) == "you made @bob an admin of Hikers"
    assert words("settings") == "you changed the settings of Hikers"
    settings = describe_update(
        GroupUpdated(gid, 2, BOB, "settings", ()),
        names.__getitem__,
        "Hikers",
        GroupSettings(members_can_edit=False, join_approval=True),
    )
    assert settings == (
        "@bob changed the settings of Hikers: only admins edit the group info and admins "
        "approve new members"
    )
    # Found out from the server (a 404 on fetch) with nobody's word for who did it: no
    # empty actor ("*  removed you from Hikers", trial2).
    unknown = describe_update(
        GroupUpdated(gid, 2, "", "remove", (ME,)), names.__getitem__, "Hikers"
    )
    assert unknown == "you are no longer a member of Hikers: you were removed"
    many = tuple(str(uuid.uuid4()) for _ in range(8))
    long = describe_update(GroupUpdated(gid, 2, ME, "add", many), lambda a: a[:4], "Hikers")
    assert long.endswith("and 3 others to Hikers")
    record = update_record(GroupUpdated(gid, 2, ME, "add", (BOB,)), "x")
    assert record["type"] == "group_update" and record["targets"] == [BOB]


def test_rotation_from_env() -> None:
    from porch.client.groups import rotation_from_env
    from porch.crypto.megolm import DAY_MS, RotationPolicy

    assert rotation_from_env({}) == RotationPolicy()
    policy = rotation_from_env({"PORCH_GROUP_ROTATE_MESSAGES": "5", "PORCH_GROUP_ROTATE_DAYS": "1"})
    assert policy == RotationPolicy(max_messages=5, max_age_ms=DAY_MS)
    for bad in (
        {"PORCH_GROUP_ROTATE_MESSAGES": "0"},
        {"PORCH_GROUP_ROTATE_MESSAGES": "x"},
        {"PORCH_GROUP_ROTATE_DAYS": "inf"},
        {"PORCH_GROUP_ROTATE_DAYS": "nan"},
        {"PORCH_GROUP_ROTATE_DAYS": "400"},
    ):
        with pytest.raises(UsageError):
            rotation_from_env(bad)
