"""The group store's contract, on SQLite and on PostgreSQL (the fixtures of test_contract)."""

# ruff: noqa: F811 (the fixtures imported from test_contract are parameters here)

from __future__ import annotations

import asyncio
import uuid

import pytest

from porch.server.store.base import (
    ADMIN,
    MEMBER,
    Group,
    GroupEdit,
    GroupExists,
    NoSuchAccount,
    Store,
    TooManyGroups,
)
from tests.unit.server.store.helpers import PHONE_A, PHONE_B, PHONE_C, register, with_keys
from tests.unit.server.store.test_contract import make, store  # noqa: F401 (fixtures)

MAX = 500


async def keyed(store: Store, phone: str) -> str:
    account = await register(store, phone)
    await with_keys(store, account, 0, False)
    return account


async def trio(store: Store) -> tuple[str, str, str]:
    return (
        await keyed(store, PHONE_A),
        await keyed(store, PHONE_B),
        await keyed(store, PHONE_C),
    )


async def test_create_get_and_list(store: Store) -> None:
    a, b, c = await trio(store)
    gid = str(uuid.uuid4())
    group = await store.create_group(gid, b"sealed", True, False, a, [b], MAX)
    assert group.revision == 1 and group.state == b"sealed"
    assert group.members_can_edit and not group.join_approval
    assert [(m.account_id, m.role, m.since) for m in group.members] == [
        (a, ADMIN, 0),
        (b, MEMBER, 1),
    ]
    assert group.member(a) is not None and group.member(a).role == ADMIN  # type: ignore[union-attr]
    assert group.member(c) is None and group.pending == () and group.invite_hash is None
    assert await store.get_group(gid) == group
    assert await store.get_group(str(uuid.uuid4())) is None
    assert await store.list_groups(b) == [(gid, 1)]
    assert await store.list_groups(c) == []
    with pytest.raises(GroupExists):
        await store.create_group(gid, b"x", False, False, c, [], MAX)


async def test_members_must_have_keys(store: Store) -> None:
    a = await keyed(store, PHONE_A)
    keyless = await register(store, PHONE_B)
    with pytest.raises(NoSuchAccount):
        await store.create_group(str(uuid.uuid4()), b"s", False, False, a, [keyless], MAX)
    with pytest.raises(NoSuchAccount):
        await store.create_group(str(uuid.uuid4()), b"s", False, False, a, [str(uuid.uuid4())], MAX)
    assert await store.list_groups(a) == []  # nothing of a refused create is kept


async def test_change_applies_an_edit_and_bumps_the_revision(store: Store) -> None:
    a, b, c = await trio(store)
    gid = str(uuid.uuid4())
    await store.create_group(gid, b"s1", False, True, a, [], MAX)
    change = await store.change_group(
        gid,
        lambda g: GroupEdit(state=b"s2", add=(b,), request=(c,), invite_hash=b"h" * 32),
        MAX,
    )
    assert change is not None and change.changed and change.after is not None
    after = change.after
    assert after.revision == 2 and after.state == b"s2" and after.join_approval
    assert after.state_revision == 2
    assert [m.account_id for m in after.members] == [a, b]
    assert after.member(b) is not None and after.member(b).since == 2  # type: ignore[union-attr]
    assert after.pending == (c,) and after.invite_hash == b"h" * 32
    assert await store.group_by_invite(b"h" * 32) == gid
    # Adding a requester drops the request; roles and settings change; the invite goes.
    change = await store.change_group(
        gid,
        lambda g: GroupEdit(add=(c,), roles=((b, ADMIN),), join_approval=False, revoke_invite=True),
        MAX,
    )
    assert change is not None and change.after is not None
    g = change.after
    assert g.revision == 3 and g.pending == () and not g.join_approval
    assert g.state_revision == 2  # the state did not change: the revision it was sealed for
    assert g.admins == (a, b) and g.invite_hash is None
    assert await store.group_by_invite(b"h" * 32) is None
    # No edit: nothing changes, the revision stays.
    same = await store.change_group(gid, lambda g: None, MAX)
    assert same is not None and not same.changed and same.after == g
    assert await store.change_group(str(uuid.uuid4()), lambda g: GroupEdit(), MAX) is None


async def test_a_refused_change_changes_nothing(store: Store) -> None:
    a, b, _ = await trio(store)
    gid = str(uuid.uuid4())
    before = await store.create_group(gid, b"s", False, False, a, [], MAX)

    def refuse(g: Group) -> GroupEdit:
        raise LookupError("no")

    with pytest.raises(LookupError):
        await store.change_group(gid, refuse, MAX)
    with pytest.raises(NoSuchAccount):
        await store.change_group(gid, lambda g: GroupEdit(add=(str(uuid.uuid4()),)), MAX)
    assert await store.get_group(gid) == before
    assert await store.list_groups(b) == []


async def test_groups_per_account_limit(store: Store) -> None:
    a, b, c = await trio(store)
    g1, g2, g3 = (str(uuid.uuid4()) for _ in range(3))
    await store.create_group(g1, b"s", False, False, a, [b], 2)
    await store.create_group(g2, b"s", False, False, c, [b], 2)
    with pytest.raises(TooManyGroups) as refused:
        await store.create_group(g3, b"s", False, False, a, [b], 2)
    assert refused.value.account_id == b
    await store.create_group(g3, b"s", False, False, a, [], 2)
    with pytest.raises(TooManyGroups):
        await store.change_group(g3, lambda g: GroupEdit(add=(b,)), 2)
    with pytest.raises(TooManyGroups):  # the creator counts too
        await store.create_group(str(uuid.uuid4()), b"s", False, False, a, [], 2)


async def test_last_member_leaving_deletes_the_group(store: Store) -> None:
    a, b, _ = await trio(store)
    gid = str(uuid.uuid4())
    await store.create_group(gid, b"s", False, False, a, [], MAX)
    await store.change_group(gid, lambda g: GroupEdit(request=(b,), invite_hash=b"i" * 32), MAX)
    change = await store.change_group(gid, lambda g: GroupEdit(remove=(a,)), MAX)
    assert change is not None and change.after is None and change.changed
    assert await store.get_group(gid) is None
    assert await store.group_by_invite(b"i" * 32) is None
    assert await store.list_groups(a) == []
    # The id is free again: nothing of the old group is left behind.
    again = await store.create_group(gid, b"t", False, False, b, [], MAX)
    assert again.pending == () and again.revision == 1


async def test_concurrent_changes_against_one_revision_only_one_wins(
    store: Store,
) -> None:
    a, *_ = await trio(store)
    gid = str(uuid.uuid4())
    await store.create_group(gid, b"s", False, False, a, [], MAX)

    def against(revision: int, state: bytes):  # type: ignore[no-untyped-def]
        def decide(g: Group) -> GroupEdit:
            if g.revision != revision:
                raise RuntimeError("conflict")
            return GroupEdit(state=state)

        return decide

    results = await asyncio.gather(
        *(store.change_group(gid, against(1, b"s%d" % i), MAX) for i in range(8)),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1
    assert all(isinstance(r, RuntimeError) for r in results if isinstance(r, BaseException))
    final = await store.get_group(gid)
    assert final is not None and final.revision == 2
