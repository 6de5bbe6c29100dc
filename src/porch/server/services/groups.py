"""Groups on the server (spec B, docs/protocol.md "Groups"): membership, roles, invites.

The server keeps who is in a group, because it has to route to them, and an opaque sealed
state; it never sees a group's name or messages. The rules live in group_rules.py and are
checked inside each change's transaction. After a change commits, every connected device of
every account that was a member before or is one after gets a `group_changed` hint (online
only, published after commit like every bus event: the store is the record).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.protocol.frames import group_changed
from porch.server.bus.base import Bus, DeviceEvent
from porch.server.ratelimit import Limit, RateLimiter
from porch.server.services import group_rules as rules
from porch.server.services.accounts import Principal
from porch.server.store.base import (
    ADMIN,
    Group,
    GroupChange,
    GroupExists,
    GroupMember,
    NoSuchAccount,
    RevisionConflict,
    Store,
    TooManyGroups,
)

log = logging.getLogger("porch.groups")

MAX_ACCOUNTS_PER_CALL = 1000  # accounts in one create or add (spec B)
MAX_STATE_BYTES = 8225  # a sealed state blob (docs/protocol.md, "Sealed group state")
INVITE_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class GroupView:
    """A group as one member may see it: join requests are shown to admins only."""

    id: str
    revision: int
    state: bytes
    state_revision: int
    members_can_edit: bool
    join_approval: bool
    members: tuple[GroupMember, ...]
    pending: tuple[str, ...]
    invite: bool


@dataclass(frozen=True, slots=True)
class JoinResult:
    status: Literal["joined", "pending"]
    group_id: str
    group: GroupView | None  # when joined


def view(g: Group, viewer: str) -> GroupView:
    me = g.member(viewer)
    return GroupView(
        id=g.id,
        revision=g.revision,
        state=g.state,
        state_revision=g.state_revision,
        members_can_edit=g.members_can_edit,
        join_approval=g.join_approval,
        members=g.members,
        pending=g.pending if me is not None and me.role == ADMIN else (),
        invite=g.invite_hash is not None,
    )


def invite_hash(token: str) -> bytes:
    """What the server keeps of an invite token: the SHA-256 of its 43 ASCII characters."""
    return hashlib.sha256(token.encode("ascii")).digest()


class GroupService:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        limiter: RateLimiter,
        joins: Limit,
        max_members: int,
        max_groups: int,
    ) -> None:
        self._store = store
        self._bus = bus
        self._limiter = limiter
        self._joins = joins
        self._max_members = max_members
        self._max_groups = max_groups

    async def create(
        self,
        who: Principal,
        group_id: str,
        state: bytes,
        members_can_edit: bool,
        join_approval: bool,
        members: Sequence[str],
    ) -> GroupView:
        _check_state(state)
        others = list(dict.fromkeys(a for a in members if a != who.account_id))
        if len(others) > MAX_ACCOUNTS_PER_CALL:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"at most {MAX_ACCOUNTS_PER_CALL} accounts at once"
            )
        if len(others) + 1 > self._max_members:
            raise ProtocolError(
                ErrorCode.GROUP_FULL,
                f"a group has at most {self._max_members} members",
                limit=self._max_members,
            )
        try:
            g = await self._store.create_group(
                group_id,
                state,
                members_can_edit,
                join_approval,
                who.account_id,
                others,
                self._max_groups,
            )
        except GroupExists:
            raise ProtocolError(ErrorCode.GROUP_EXISTS, "a group with this id exists") from None
        except (NoSuchAccount, TooManyGroups) as exc:
            raise self._refusal(exc) from None
        await self._announce(g.id, g.revision, [m.account_id for m in g.members])
        return view(g, who.account_id)

    async def list(self, who: Principal) -> list[tuple[str, int]]:
        return await self._store.list_groups(who.account_id)

    async def get(self, who: Principal, group_id: str) -> GroupView:
        g = await self._store.get_group(group_id)
        if g is None or g.member(who.account_id) is None:
            raise rules.no_group()
        return view(g, who.account_id)

    async def set_state(
        self, who: Principal, group_id: str, revision: int, state: bytes
    ) -> GroupView:
        _check_state(state)
        return await self._view(who, group_id, rules.set_state(who.account_id, revision, state))

    async def set_settings(
        self,
        who: Principal,
        group_id: str,
        revision: int,
        members_can_edit: bool,
        join_approval: bool,
    ) -> GroupView:
        decide = rules.set_settings(who.account_id, revision, members_can_edit, join_approval)
        return await self._view(who, group_id, decide)

    async def add_members(
        self, who: Principal, group_id: str, revision: int, accounts: Sequence[str]
    ) -> GroupView:
        if len(accounts) > MAX_ACCOUNTS_PER_CALL:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"at most {MAX_ACCOUNTS_PER_CALL} accounts at once"
            )
        decide = rules.add_members(who.account_id, revision, accounts, self._max_members)
        return await self._view(who, group_id, decide)

    async def remove_member(
        self, who: Principal, group_id: str, revision: int, account_id: str
    ) -> GroupView:
        return await self._view(
            who, group_id, rules.remove_member(who.account_id, revision, account_id)
        )

    async def leave(self, who: Principal, group_id: str) -> None:
        await self._change(group_id, rules.leave(who.account_id))

    async def set_role(
        self, who: Principal, group_id: str, revision: int, account_id: str, role: str
    ) -> GroupView:
        decide = rules.set_role(who.account_id, revision, account_id, role)
        return await self._view(who, group_id, decide)

    async def create_invite(self, who: Principal, group_id: str) -> str:
        """A new invite token (replacing any other): 32 random bytes, unpadded base64url."""
        token = secrets.token_urlsafe(INVITE_TOKEN_BYTES)
        await self._change(group_id, rules.set_invite(who.account_id, invite_hash(token)))
        return token

    async def revoke_invite(self, who: Principal, group_id: str) -> None:
        await self._change(group_id, rules.revoke_invite(who.account_id))

    async def join(self, who: Principal, token: str) -> JoinResult:
        # Limited before the lookup, so that guessing costs the same whatever it finds.
        await self._limiter.hit("group-joins", who.account_id, self._joins)
        hashed = invite_hash(token)
        group_id = await self._store.group_by_invite(hashed)
        if group_id is None:
            raise ProtocolError(
                ErrorCode.NOT_FOUND,
                "no active invite has this token: the link was turned off or replaced; ask an "
                "admin of the group for a new one",
            )
        change = await self._change(group_id, rules.join(who.account_id, hashed, self._max_members))
        after = change.after
        assert after is not None  # a join never empties a group
        if after.member(who.account_id) is None:
            return JoinResult("pending", group_id, None)
        return JoinResult("joined", group_id, view(after, who.account_id))

    async def answer_request(
        self, who: Principal, group_id: str, account_id: str, approve: bool
    ) -> GroupView:
        decide = rules.answer_request(who.account_id, account_id, approve, self._max_members)
        return await self._view(who, group_id, decide)

    # The change path ------------------------------------------------------------------------

    async def _view(self, who: Principal, group_id: str, decide: rules.Decide) -> GroupView:
        change = await self._change(group_id, decide)
        if change.after is None:  # cannot happen for the routes that answer with the group
            raise rules.no_group()
        return view(change.after, who.account_id)

    async def _change(self, group_id: str, decide: rules.Decide) -> GroupChange:
        try:
            change = await self._store.change_group(group_id, decide, self._max_groups)
        except (NoSuchAccount, TooManyGroups) as exc:
            raise self._refusal(exc) from None
        except RevisionConflict:  # the compare-and-set lost to a concurrent change
            raise ProtocolError(
                ErrorCode.REVISION_CONFLICT, "the group changed meanwhile: fetch it and try again"
            ) from None
        if change is None:
            raise rules.no_group()
        if change.changed:
            accounts = [m.account_id for m in change.before.members]
            if change.after is not None:
                accounts += [m.account_id for m in change.after.members]
            revision = change.before.revision + 1 if change.after is None else change.after.revision
            await self._announce(group_id, revision, accounts)
        return change

    def _refusal(self, exc: NoSuchAccount | TooManyGroups) -> ProtocolError:
        if isinstance(exc, TooManyGroups):
            # Which account is full stays unsaid, as for unknown accounts: the adder learns
            # only that one of them cannot join more groups.
            return ProtocolError(
                ErrorCode.TOO_MANY_GROUPS,
                f"an account is in {self._max_groups} groups already, the most it may be in",
                limit=self._max_groups,
            )
        return ProtocolError(ErrorCode.NOT_FOUND, "an account to add does not exist or has no keys")

    async def _announce(self, group_id: str, revision: int, accounts: Sequence[str]) -> None:
        """group_changed to every device of each account (the bus drops it for devices that
        are not connected: a hint, not a record)."""
        frame = group_changed(group_id, revision)
        for account_id in dict.fromkeys(accounts):
            for device in await self._store.list_devices(account_id):
                await self._bus.publish(account_id, device.device_id, DeviceEvent(frame=frame))


def _check_state(state: bytes) -> None:
    if not 1 <= len(state) <= MAX_STATE_BYTES:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"a group state is 1 to {MAX_STATE_BYTES} bytes")
