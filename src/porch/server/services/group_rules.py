"""Who may change what in a group (spec B), as pure decisions over the locked group.

Each function returns a `decide(group) -> GroupEdit | None` for GroupStore.change_group, which
runs it inside the change's transaction on the row it has just locked, so the rules are
checked against the group as it is when the change commits, never against an older read.
A decision raises ProtocolError to refuse; None means there is nothing to do (no revision).

The order of the checks is the same everywhere: membership (a non-member gets the 404 of an
unknown group, so that it learns nothing), permission (403), revision (409, refetch and
retry), then what the change is about (404 for a target that is not there, 409 for a limit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.store.base import ADMIN, MEMBER, Group, GroupEdit, GroupMember

Decide = Callable[[Group], GroupEdit | None]

NO_GROUP = "no group with this id"


def no_group() -> ProtocolError:
    return ProtocolError(ErrorCode.NOT_FOUND, NO_GROUP)


def member_of(g: Group, account_id: str) -> GroupMember:
    me = g.member(account_id)
    if me is None:
        raise no_group()
    return me


def may_edit(g: Group, me: GroupMember) -> bool:
    """Admins always; members too when the group lets them (members_can_edit)."""
    return me.role == ADMIN or g.members_can_edit


def _editor(g: Group, actor: str, what: str) -> GroupMember:
    me = member_of(g, actor)
    if not may_edit(g, me):
        raise ProtocolError(ErrorCode.FORBIDDEN, f"only admins may {what} in this group")
    return me


def _admin(g: Group, actor: str, what: str) -> GroupMember:
    me = member_of(g, actor)
    if me.role != ADMIN:
        raise ProtocolError(ErrorCode.FORBIDDEN, f"only admins may {what}")
    return me


def _revision(g: Group, revision: int) -> None:
    if revision != g.revision:
        raise ProtocolError(
            ErrorCode.REVISION_CONFLICT,
            f"the group is at revision {g.revision}: fetch it and try again",
            revision=g.revision,
        )


def _room(g: Group, more: int, max_members: int) -> None:
    if len(g.members) + more > max_members:
        raise ProtocolError(
            ErrorCode.GROUP_FULL, f"a group has at most {max_members} members", limit=max_members
        )


def set_state(actor: str, revision: int, state: bytes) -> Decide:
    def decide(g: Group) -> GroupEdit:
        _editor(g, actor, "change the state")
        _revision(g, revision)
        return GroupEdit(state=state)

    return decide


def set_settings(actor: str, revision: int, members_can_edit: bool, join_approval: bool) -> Decide:
    def decide(g: Group) -> GroupEdit | None:
        _admin(g, actor, "change the settings")
        _revision(g, revision)
        if (g.members_can_edit, g.join_approval) == (members_can_edit, join_approval):
            return None
        return GroupEdit(members_can_edit=members_can_edit, join_approval=join_approval)

    return decide


def add_members(actor: str, revision: int, accounts: Sequence[str], max_members: int) -> Decide:
    def decide(g: Group) -> GroupEdit | None:
        _editor(g, actor, "add members")
        _revision(g, revision)
        fresh = tuple(dict.fromkeys(a for a in accounts if g.member(a) is None))
        if not fresh:
            return None  # all of them are members already
        _room(g, len(fresh), max_members)
        return GroupEdit(add=fresh)

    return decide


def remove_member(actor: str, revision: int, target: str) -> Decide:
    def decide(g: Group) -> GroupEdit:
        me = _editor(g, actor, "remove members")
        _revision(g, revision)
        if target == actor:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "to leave a group, use its leave route")
        them = g.member(target)
        if them is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "that account is not a member")
        if them.role == ADMIN and me.role != ADMIN:
            raise ProtocolError(ErrorCode.FORBIDDEN, "only admins may remove an admin")
        return GroupEdit(remove=(target,))

    return decide


def leave(actor: str) -> Decide:
    """The last admin leaving with others left hands the group to the longest-standing
    member (the lowest `since`, then the lowest id)."""

    def decide(g: Group) -> GroupEdit:
        me = member_of(g, actor)
        others = [m for m in g.members if m.account_id != actor]
        roles: tuple[tuple[str, str], ...] = ()
        if me.role == ADMIN and others and not any(m.role == ADMIN for m in others):
            heir = min(others, key=lambda m: (m.since, m.account_id))
            roles = ((heir.account_id, ADMIN),)
        return GroupEdit(remove=(actor,), roles=roles)

    return decide


def set_role(actor: str, revision: int, target: str, role: str) -> Decide:
    def decide(g: Group) -> GroupEdit | None:
        _admin(g, actor, "change roles")
        _revision(g, revision)
        them = g.member(target)
        if them is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "that account is not a member")
        if them.role == role:
            return None
        if role == MEMBER and g.admins == (target,):
            raise ProtocolError(
                ErrorCode.LAST_ADMIN, "the last admin cannot be demoted: promote another first"
            )
        return GroupEdit(roles=((target, role),))

    return decide


def set_invite(actor: str, invite_hash: bytes) -> Decide:
    def decide(g: Group) -> GroupEdit:
        _editor(g, actor, "share invite links")
        return GroupEdit(invite_hash=invite_hash)

    return decide


def revoke_invite(actor: str) -> Decide:
    def decide(g: Group) -> GroupEdit | None:
        _editor(g, actor, "revoke invite links")
        return None if g.invite_hash is None else GroupEdit(revoke_invite=True)

    return decide


def join(actor: str, invite_hash: bytes, max_members: int) -> Decide:
    """A member already in stays in; with join_approval the joiner waits in `pending`
    (whose length is held to the same cap as the members')."""

    def decide(g: Group) -> GroupEdit | None:
        if g.invite_hash != invite_hash:  # revoked or replaced since it was looked up
            raise ProtocolError(
                ErrorCode.NOT_FOUND,
                "no active invite has this token: the link was turned off or replaced; ask an "
                "admin of the group for a new one",
            )
        if g.member(actor) is not None:
            return None
        if g.join_approval:
            if actor in g.pending:
                return None
            if len(g.pending) >= max_members:
                raise ProtocolError(
                    ErrorCode.GROUP_FULL, "too many join requests are waiting", limit=max_members
                )
            return GroupEdit(request=(actor,))
        _room(g, 1, max_members)
        return GroupEdit(add=(actor,))

    return decide


def answer_request(actor: str, target: str, approve: bool, max_members: int) -> Decide:
    def decide(g: Group) -> GroupEdit:
        _admin(g, actor, "answer join requests")
        if target not in g.pending:
            raise ProtocolError(ErrorCode.NOT_FOUND, "that account has no join request waiting")
        if not approve:
            return GroupEdit(drop_requests=(target,))
        _room(g, 1, max_members)
        return GroupEdit(add=(target,))

    return decide
