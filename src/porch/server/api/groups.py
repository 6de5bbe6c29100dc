"""Groups over HTTP (spec B; docs/protocol.md, "Groups"). Every route is authenticated as a
device, and the actor is its account; a group the actor is not in answers like an unknown one.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.protocol.fields import (
    ACCOUNT_ID_PATTERN,
    BASE64_PATTERN,
    MAX_GROUP_REVISION,
    AccountId,
    GroupId,
)
from porch.server.api.deps import PrincipalDep, ServicesDep
from porch.server.services.groups import MAX_ACCOUNTS_PER_CALL, MAX_STATE_BYTES, GroupView

router = APIRouter(prefix="/v1/groups", tags=["groups"])

GroupIdPath = Annotated[str, Path(pattern=ACCOUNT_ID_PATTERN)]
AccountIdPath = Annotated[str, Path(pattern=ACCOUNT_ID_PATTERN)]
Revision = Annotated[int, Field(ge=0, le=MAX_GROUP_REVISION, strict=True)]
# base64 of at most MAX_STATE_BYTES (with or without padding); decoded and measured below.
State = Annotated[
    str, Field(min_length=2, max_length=4 * -(-MAX_STATE_BYTES // 3), pattern=BASE64_PATTERN)
]
Accounts = Annotated[list[AccountId], Field(max_length=MAX_ACCOUNTS_PER_CALL)]
Role = Literal["admin", "member"]
# 32 random bytes, unpadded base64url: 43 characters.
InviteToken = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SettingsBody(_Body):
    members_can_edit: bool
    join_approval: bool


class CreateBody(_Body):
    id: GroupId
    state: State
    settings: SettingsBody
    members: Accounts = []


class StateBody(_Body):
    revision: Revision
    state: State


class SettingsChangeBody(_Body):
    revision: Revision
    settings: SettingsBody


class MembersBody(_Body):
    revision: Revision
    accounts: Annotated[list[AccountId], Field(min_length=1, max_length=MAX_ACCOUNTS_PER_CALL)]


class RoleBody(_Body):
    revision: Revision
    role: Role


class JoinBody(_Body):
    token: InviteToken


class AnswerBody(_Body):
    approve: bool


class MemberOut(BaseModel):
    account: str
    role: Role


class SettingsOut(BaseModel):
    members_can_edit: bool
    join_approval: bool


class GroupOut(BaseModel):
    id: str
    revision: int
    # The revision the state was stored under: what its sealing binds (protocol.md section 8).
    state_revision: int
    state: str
    settings: SettingsOut
    members: list[MemberOut]
    pending: list[str]
    invite: bool


class GroupRef(BaseModel):
    id: str
    revision: int


class GroupList(BaseModel):
    groups: list[GroupRef]


class InviteOut(BaseModel):
    token: str


class JoinedOut(BaseModel):
    status: Literal["joined"]
    group: GroupOut


class PendingOut(BaseModel):
    status: Literal["pending"]
    group_id: str


def _out(g: GroupView) -> GroupOut:
    return GroupOut(
        id=g.id,
        revision=g.revision,
        state_revision=g.state_revision,
        state=base64.b64encode(g.state).decode(),
        settings=SettingsOut(members_can_edit=g.members_can_edit, join_approval=g.join_approval),
        members=[MemberOut(account=m.account_id, role=m.role) for m in g.members],
        pending=list(g.pending),
        invite=g.invite,
    )


def _state(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "state: not base64") from None


@router.post("", status_code=201, response_model=GroupOut)
async def create(body: CreateBody, who: PrincipalDep, svc: ServicesDep) -> GroupOut:
    """A new group with the caller as its admin and `members` as members (revision 1)."""
    s = body.settings
    group = await svc.groups.create(
        who, body.id, _state(body.state), s.members_can_edit, s.join_approval, body.members
    )
    return _out(group)


@router.get("", response_model=GroupList)
async def list_groups(who: PrincipalDep, svc: ServicesDep) -> GroupList:
    """The caller's groups and their revisions (a client refetches those that moved)."""
    return GroupList(groups=[GroupRef(id=i, revision=r) for i, r in await svc.groups.list(who)])


@router.post("/join", response_model=JoinedOut | PendingOut)
async def join(body: JoinBody, who: PrincipalDep, svc: ServicesDep) -> JoinedOut | PendingOut:
    """Join by invite token; with join approval on, wait for an admin (status pending)."""
    result = await svc.groups.join(who, body.token)
    if result.group is None:
        return PendingOut(status="pending", group_id=result.group_id)
    return JoinedOut(status="joined", group=_out(result.group))


@router.get("/{group_id}", response_model=GroupOut)
async def get(group_id: GroupIdPath, who: PrincipalDep, svc: ServicesDep) -> GroupOut:
    return _out(await svc.groups.get(who, group_id))


@router.put("/{group_id}/state", response_model=GroupOut)
async def set_state(
    group_id: GroupIdPath, body: StateBody, who: PrincipalDep, svc: ServicesDep
) -> GroupOut:
    return _out(await svc.groups.set_state(who, group_id, body.revision, _state(body.state)))


@router.put("/{group_id}/settings", response_model=GroupOut)
async def set_settings(
    group_id: GroupIdPath, body: SettingsChangeBody, who: PrincipalDep, svc: ServicesDep
) -> GroupOut:
    s = body.settings
    group = await svc.groups.set_settings(
        who, group_id, body.revision, s.members_can_edit, s.join_approval
    )
    return _out(group)


@router.post("/{group_id}/members", response_model=GroupOut)
async def add_members(
    group_id: GroupIdPath, body: MembersBody, who: PrincipalDep, svc: ServicesDep
) -> GroupOut:
    return _out(await svc.groups.add_members(who, group_id, body.revision, body.accounts))


@router.delete("/{group_id}/members/{account_id}", response_model=GroupOut)
async def remove_member(
    group_id: GroupIdPath,
    account_id: AccountIdPath,
    who: PrincipalDep,
    svc: ServicesDep,
    revision: Annotated[int, Query(ge=0, le=MAX_GROUP_REVISION)],
) -> GroupOut:
    return _out(await svc.groups.remove_member(who, group_id, revision, account_id))


@router.put("/{group_id}/members/{account_id}/role", response_model=GroupOut)
async def set_role(
    group_id: GroupIdPath,
    account_id: AccountIdPath,
    body: RoleBody,
    who: PrincipalDep,
    svc: ServicesDep,
) -> GroupOut:
    return _out(await svc.groups.set_role(who, group_id, body.revision, account_id, body.role))


@router.post("/{group_id}/leave", status_code=204)
async def leave(group_id: GroupIdPath, who: PrincipalDep, svc: ServicesDep) -> Response:
    await svc.groups.leave(who, group_id)
    return Response(status_code=204)


@router.post("/{group_id}/invite", response_model=InviteOut)
async def create_invite(group_id: GroupIdPath, who: PrincipalDep, svc: ServicesDep) -> InviteOut:
    """A new invite token; it replaces any earlier one, which stops working."""
    return InviteOut(token=await svc.groups.create_invite(who, group_id))


@router.delete("/{group_id}/invite", status_code=204)
async def revoke_invite(group_id: GroupIdPath, who: PrincipalDep, svc: ServicesDep) -> Response:
    await svc.groups.revoke_invite(who, group_id)
    return Response(status_code=204)


@router.post("/{group_id}/requests/{account_id}", response_model=GroupOut)
async def answer_request(
    group_id: GroupIdPath,
    account_id: AccountIdPath,
    body: AnswerBody,
    who: PrincipalDep,
    svc: ServicesDep,
) -> GroupOut:
    return _out(await svc.groups.answer_request(who, group_id, account_id, body.approve))
