"""Groups, members, join requests and invite hashes: one text per query (sql.py, spec B).

Every change is one transaction that first locks the group's row (`{for_update}`; SQLite's
single writer serialises anyway), lets the service decide the edit against what it read, and
writes the new revision with a compare-and-set (`WHERE revision = ?`), so that of two
concurrent changes made against one revision only one can win. Accounts being added are
locked in id order before they are counted, so two groups cannot both take an account's
last free place, and two changes never lock accounts in opposite orders (no deadlock).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from porch.server.store.base import (
    ADMIN,
    MEMBER,
    Group,
    GroupChange,
    GroupEdit,
    GroupExists,
    GroupMember,
    NoSuchAccount,
    RevisionConflict,
    TooManyGroups,
)
from porch.server.store.sql import Op, SqlDomain, UniqueViolation, count, row, rows, value

GROUP_COLS = "id, revision, state, state_revision, members_can_edit, join_approval, invite_hash"
GROUP_ADD = (
    "INSERT INTO groups (id, revision, state, state_revision, members_can_edit, join_approval)"
    " VALUES (?, 1, ?, 1, ?, ?)"
)
GROUP_BY_ID = "SELECT " + GROUP_COLS + " FROM groups WHERE id = ?"
GROUP_LOCKED = "SELECT " + GROUP_COLS + " FROM groups WHERE id = ?{for_update}"
GROUP_BY_INVITE = "SELECT id FROM groups WHERE invite_hash = ?"
# The compare-and-set: 0 rows changed means another change got there first.
GROUP_UPDATE = (
    "UPDATE groups SET revision = ?, state = ?, state_revision = ?, members_can_edit = ?,"
    " join_approval = ?, invite_hash = ? WHERE id = ? AND revision = ?"
)
GROUP_DELETE = (
    "DELETE FROM group_requests WHERE group_id = ?",
    "DELETE FROM group_members WHERE group_id = ?",
    "DELETE FROM groups WHERE id = ?",
)
MEMBERS = (
    "SELECT account_id, role, since FROM group_members WHERE group_id = ?"
    " ORDER BY since, account_id"
)
MEMBER_ADD = "INSERT INTO group_members (group_id, account_id, role, since) VALUES (?, ?, ?, ?)"
MEMBER_DELETE = "DELETE FROM group_members WHERE group_id = ? AND account_id = ?"
ROLE_SET = "UPDATE group_members SET role = ? WHERE group_id = ? AND account_id = ?"
GROUPS_OF = (
    "SELECT g.id, g.revision FROM group_members m JOIN groups g ON g.id = m.group_id"
    " WHERE m.account_id = ? ORDER BY g.id"
)
GROUPS_OF_COUNT = "SELECT COUNT(*) FROM group_members WHERE account_id = ?"
# Members must be accounts with keys (spec B); the row lock holds the account's group count
# still until this transaction ends.
ACCOUNT_MASTER_KEY_LOCKED = "SELECT master_key FROM accounts WHERE id = ?{for_update}"
REQUESTS = "SELECT account_id FROM group_requests WHERE group_id = ? ORDER BY since, account_id"
REQUEST_ADD = (
    "INSERT INTO group_requests (group_id, account_id, since) VALUES (?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
REQUEST_DELETE = "DELETE FROM group_requests WHERE group_id = ? AND account_id = ?"


class SqlGroupStore(SqlDomain):
    async def create_group(
        self,
        group_id: str,
        state: bytes,
        members_can_edit: bool,
        join_approval: bool,
        creator: str,
        members: Sequence[str],
        max_groups: int,
    ) -> Group:
        def op() -> Op[Group]:
            yield from _check_joiners([creator, *members], max_groups)
            try:
                yield count(GROUP_ADD, group_id, state, int(members_can_edit), int(join_approval))
            except UniqueViolation:
                raise GroupExists(group_id) from None
            # The creator comes first of all (since 0), the members it named next (since 1).
            yield count(MEMBER_ADD, group_id, creator, ADMIN, 0)
            for account_id in members:
                yield count(MEMBER_ADD, group_id, account_id, MEMBER, 1)
            group = yield from _load(GROUP_BY_ID, group_id)
            assert group is not None
            return group

        return await self._write(op)

    async def get_group(self, group_id: str) -> Group | None:
        return await self._read(lambda: _load(GROUP_BY_ID, group_id))

    async def list_groups(self, account_id: str) -> list[tuple[str, int]]:
        def op() -> Op[list[tuple[str, int]]]:
            return [(str(r[0]), int(r[1])) for r in (yield rows(GROUPS_OF, account_id))]

        return await self._read(op)

    async def group_by_invite(self, invite_hash: bytes) -> str | None:
        def op() -> Op[str | None]:
            found = yield value(GROUP_BY_INVITE, invite_hash)
            return None if found is None else str(found)

        return await self._read(op)

    async def change_group(
        self,
        group_id: str,
        decide: Callable[[Group], GroupEdit | None],
        max_groups: int,
    ) -> GroupChange | None:
        def op() -> Op[GroupChange | None]:
            before = yield from _load(GROUP_LOCKED, group_id)
            if before is None:
                return None
            edit = decide(before)
            if edit is None:
                return GroupChange(before, before)
            yield from _check_joiners(edit.add, max_groups)
            yield from _apply(before, edit)
            after = yield from _load(GROUP_BY_ID, group_id)
            assert after is not None
            if not after.members:  # the last member left: nothing is kept
                for sql in GROUP_DELETE:
                    yield count(sql, group_id)
                return GroupChange(before, None)
            return GroupChange(before, after)

        return await self._write(op)


def _load(sql: str, group_id: str) -> Op[Group | None]:
    found = yield row(sql, group_id)
    if found is None:
        return None
    members = tuple(
        GroupMember(str(r[0]), str(r[1]), int(r[2])) for r in (yield rows(MEMBERS, group_id))
    )
    pending = tuple(str(r[0]) for r in (yield rows(REQUESTS, group_id)))
    return _group(found, members, pending)


def _group(found: Any, members: tuple[GroupMember, ...], pending: tuple[str, ...]) -> Group:
    invite = found[6]
    return Group(
        id=str(found[0]),
        revision=int(found[1]),
        state=bytes(found[2]),
        state_revision=int(found[3]),
        members_can_edit=bool(found[4]),
        join_approval=bool(found[5]),
        members=members,
        pending=pending,
        invite_hash=None if invite is None else bytes(invite),
    )


def _check_joiners(accounts: Sequence[str], max_groups: int) -> Op[None]:
    """Every account exists with keys and is in fewer than max_groups groups; locked in id
    order (see the module's docstring)."""
    for account_id in sorted(set(accounts)):
        if (yield value(ACCOUNT_MASTER_KEY_LOCKED, account_id)) is None:
            raise NoSuchAccount(account_id)
        if int((yield value(GROUPS_OF_COUNT, account_id))) >= max_groups:
            raise TooManyGroups(account_id)


def _apply(g: Group, edit: GroupEdit) -> Op[None]:
    revision = g.revision + 1
    invite = g.invite_hash
    if edit.revoke_invite:
        invite = None
    if edit.invite_hash is not None:
        invite = edit.invite_hash
    changed = yield count(
        GROUP_UPDATE,
        revision,
        g.state if edit.state is None else edit.state,
        g.state_revision if edit.state is None else revision,
        int(g.members_can_edit if edit.members_can_edit is None else edit.members_can_edit),
        int(g.join_approval if edit.join_approval is None else edit.join_approval),
        invite,
        g.id,
        g.revision,
    )
    if changed != 1:
        raise RevisionConflict(g.id)
    for account_id in edit.remove:
        yield count(MEMBER_DELETE, g.id, account_id)
    for account_id in edit.add:
        yield count(REQUEST_DELETE, g.id, account_id)  # a member has no request waiting
        yield count(MEMBER_ADD, g.id, account_id, MEMBER, revision)
    for account_id, role in edit.roles:
        yield count(ROLE_SET, role, g.id, account_id)
    for account_id in edit.drop_requests:
        yield count(REQUEST_DELETE, g.id, account_id)
    for account_id in edit.request:
        yield count(REQUEST_ADD, g.id, account_id, revision)
