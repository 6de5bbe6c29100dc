"""The server's group routes as typed calls (issue 7 spec B; docs/protocol.md, "Groups").

Calls go through HttpApi.request, so errors map as for every other route: a refusal is a
ServerError with the server's code (``not_found``, ``revision_conflict``, ``group_full``,
``forbidden``, ...), no connection is ServerUnreachable. Every answer is checked against the
bounds the spec gives before it is used: a server that answers with a malformed group, or more
members than any server may hold, is refused with ServerError ``bad_response`` instead of being
believed (or exhausting memory in later loops).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn

from porch.client.api import HttpApi
from porch.client.errors import ClientCode, ServerError, UsageError
from porch.crypto.group_state import MAX_BLOB_BYTES, GroupSettings
from porch.protocol.codec import b64decode, b64encode
from porch.protocol.fields import ACCOUNT_ID_PATTERN

Role = Literal["admin", "member"]
ROLES: Final = ("admin", "member")
MAX_REVISION: Final = 2**53 - 1
# The largest PORCH_MAX_GROUP_MEMBERS a server may be set to (spec B: 2..100000).
MAX_GROUP_MEMBERS: Final = 100_000
MAX_LISTED_GROUPS: Final = 100_000
MAX_ACCOUNTS_PER_CALL: Final = 1000  # spec B: at most 1000 accounts per add call
INVITE_PATTERN: Final = r"[A-Za-z0-9_-]{43}"  # 32 random bytes, unpadded base64url
_MAX_STATE_CHARS: Final = (MAX_BLOB_BYTES + 2) // 3 * 4
_ID = re.compile(ACCOUNT_ID_PATTERN)
_TOKEN = re.compile(INVITE_PATTERN)


@dataclass(frozen=True, slots=True)
class GroupMember:
    account: str
    role: Role


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    revision: int
    state: bytes  # the sealed state blob (porch.crypto.group_state), raw bytes
    settings: GroupSettings
    members: tuple[GroupMember, ...]
    pending: tuple[str, ...]  # join requests awaiting approval (admins see them; others [])
    invite: bool  # whether an invite link is active
    # The revision the state blob was stored under (what its sealing binds): open ``state``
    # with it; a new state is sealed for ``revision + 1``, the revision its upload makes.
    state_revision: int = 0

    def role_of(self, account: str) -> Role | None:
        for m in self.members:
            if m.account == account:
                return m.role
        return None


@dataclass(frozen=True, slots=True)
class GroupRef:
    id: str
    revision: int


@dataclass(frozen=True, slots=True)
class JoinResult:
    status: Literal["joined", "pending"]
    group_id: str
    group: Group | None  # the group when joined; None while an admin has to approve


def _bad(what: str) -> NoReturn:
    raise ServerError(ClientCode.BAD_RESPONSE, f"the server's answer is malformed: {what}")


def _field(obj: Any, name: str) -> Any:
    if not isinstance(obj, dict) or name not in obj:
        _bad(f"{name!r} is missing")
    return obj[name]


def _id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        _bad(f"{what} is not an id")
    return value


def _revision(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_REVISION:
        _bad("revision is not an integer in 0..2**53-1")
    return value


def _bool(value: Any, what: str) -> bool:
    if type(value) is not bool:
        _bad(f"{what} is not a boolean")
    return value


def _list(value: Any, what: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        _bad(f"{what} is not a list")
    if len(value) > limit:
        _bad(f"{what} has more than {limit} entries")
    return value


def parse_settings(obj: Any) -> GroupSettings:
    return GroupSettings(
        members_can_edit=_bool(_field(obj, "members_can_edit"), "members_can_edit"),
        join_approval=_bool(_field(obj, "join_approval"), "join_approval"),
    )


def parse_group(obj: Any) -> Group:
    """A Group object of spec B, checked field by field."""
    state = _field(obj, "state")
    if not isinstance(state, str) or not state or len(state) > _MAX_STATE_CHARS:
        _bad(f"state is not a base64 blob of at most {MAX_BLOB_BYTES} bytes")
    try:
        blob = b64decode(state)
    except ValueError:
        _bad("state is not base64")
    if len(blob) > MAX_BLOB_BYTES:
        _bad(f"state exceeds {MAX_BLOB_BYTES} bytes")
    members = []
    seen: set[str] = set()
    for m in _list(_field(obj, "members"), "members", MAX_GROUP_MEMBERS):
        account = _id(_field(m, "account"), "member account")
        role = _field(m, "role")
        if role not in ROLES:
            _bad("member role is not admin or member")
        if account in seen:
            _bad("a member is listed twice")
        seen.add(account)
        members.append(GroupMember(account, role))
    pending = [
        _id(a, "pending account")
        for a in _list(_field(obj, "pending"), "pending", MAX_GROUP_MEMBERS)
    ]
    return Group(
        id=_id(_field(obj, "id"), "group id"),
        revision=_revision(_field(obj, "revision")),
        state=blob,
        settings=parse_settings(_field(obj, "settings")),
        members=tuple(members),
        pending=tuple(pending),
        invite=_bool(_field(obj, "invite"), "invite"),
        state_revision=_revision(_field(obj, "state_revision")),
    )


def parse_group_list(obj: Any) -> list[GroupRef]:
    return [
        GroupRef(_id(_field(g, "id"), "group id"), _revision(_field(g, "revision")))
        for g in _list(_field(obj, "groups"), "groups", MAX_LISTED_GROUPS)
    ]


def parse_join(obj: Any) -> JoinResult:
    status = _field(obj, "status")
    if status == "joined":
        group = parse_group(_field(obj, "group"))
        return JoinResult("joined", group.id, group)
    if status == "pending":
        return JoinResult("pending", _id(_field(obj, "group_id"), "group id"), None)
    _bad("join status is not joined or pending")


def parse_token(obj: Any) -> str:
    token = _field(obj, "token")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        _bad("invite token is not 43 characters of base64url")
    return token


def _check_id(value: str, what: str) -> str:
    # Checked before it goes into a path: an id is never a path segment of something else.
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise UsageError(f"{what} {value!r:.60} is not an id (a lowercase UUID)")
    return value


def _check_accounts(accounts: Sequence[str]) -> list[str]:
    if len(accounts) > MAX_ACCOUNTS_PER_CALL:
        raise UsageError(f"at most {MAX_ACCOUNTS_PER_CALL} accounts can be added at once")
    if len(set(accounts)) != len(accounts):
        raise UsageError("an account is listed twice")
    return [_check_id(a, "account") for a in accounts]


def _check_revision(revision: int) -> int:
    if type(revision) is not int or not 0 <= revision <= MAX_REVISION:
        raise UsageError("revision must be an integer in 0..2**53-1")
    return revision


def _check_state(state: bytes) -> str:
    if not 0 < len(state) <= MAX_BLOB_BYTES:
        raise UsageError(f"the sealed state must be 1..{MAX_BLOB_BYTES} bytes")
    return b64encode(state)


def _settings_json(settings: GroupSettings) -> dict[str, bool]:
    return {
        "members_can_edit": settings.members_can_edit,
        "join_approval": settings.join_approval,
    }


class GroupApi:
    """Every spec B route; ``api`` is an authenticated HttpApi (a device's credentials)."""

    def __init__(self, api: HttpApi) -> None:
        self._api = api

    async def create(
        self, group_id: str, state: bytes, settings: GroupSettings, members: Sequence[str]
    ) -> Group:
        """POST /v1/groups: the creator becomes admin; ``members`` are the others."""
        body = {
            "id": _check_id(group_id, "group id"),
            "state": _check_state(state),
            "settings": _settings_json(settings),
            "members": _check_accounts(members),
        }
        return parse_group(await self._api.request("POST", "/v1/groups", body))

    async def list_groups(self) -> list[GroupRef]:
        return parse_group_list(await self._api.request("GET", "/v1/groups"))

    async def get(self, group_id: str) -> Group:
        path = f"/v1/groups/{_check_id(group_id, 'group id')}"
        return parse_group(await self._api.request("GET", path))

    async def put_state(self, group_id: str, revision: int, state: bytes) -> Group:
        path = f"/v1/groups/{_check_id(group_id, 'group id')}/state"
        body = {"revision": _check_revision(revision), "state": _check_state(state)}
        return parse_group(await self._api.request("PUT", path, body))

    async def put_settings(self, group_id: str, revision: int, settings: GroupSettings) -> Group:
        path = f"/v1/groups/{_check_id(group_id, 'group id')}/settings"
        body = {"revision": _check_revision(revision), "settings": _settings_json(settings)}
        return parse_group(await self._api.request("PUT", path, body))

    async def add_members(self, group_id: str, revision: int, accounts: Sequence[str]) -> Group:
        path = f"/v1/groups/{_check_id(group_id, 'group id')}/members"
        if not accounts:
            raise UsageError("name at least one account to add")
        body = {"revision": _check_revision(revision), "accounts": _check_accounts(accounts)}
        return parse_group(await self._api.request("POST", path, body))

    async def remove_member(self, group_id: str, account: str, revision: int) -> Group:
        gid, acct = _check_id(group_id, "group id"), _check_id(account, "account")
        path = f"/v1/groups/{gid}/members/{acct}?revision={_check_revision(revision)}"
        return parse_group(await self._api.request("DELETE", path))

    async def leave(self, group_id: str) -> None:
        await self._api.request("POST", f"/v1/groups/{_check_id(group_id, 'group id')}/leave")

    async def set_role(self, group_id: str, account: str, revision: int, role: Role) -> Group:
        if role not in ROLES:
            raise UsageError("role must be admin or member")
        gid, acct = _check_id(group_id, "group id"), _check_id(account, "account")
        body = {"revision": _check_revision(revision), "role": role}
        return parse_group(
            await self._api.request("PUT", f"/v1/groups/{gid}/members/{acct}/role", body)
        )

    async def create_invite(self, group_id: str) -> str:
        """A new invite token (replacing any older one)."""
        path = f"/v1/groups/{_check_id(group_id, 'group id')}/invite"
        return parse_token(await self._api.request("POST", path))

    async def revoke_invite(self, group_id: str) -> None:
        await self._api.request("DELETE", f"/v1/groups/{_check_id(group_id, 'group id')}/invite")

    async def join(self, token: str) -> JoinResult:
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise UsageError("an invite token is 43 characters of base64url")
        return parse_join(await self._api.request("POST", "/v1/groups/join", {"token": token}))

    async def answer_request(self, group_id: str, account: str, approve: bool) -> Group:
        gid, acct = _check_id(group_id, "group id"), _check_id(account, "account")
        body = {"approve": bool(approve)}
        return parse_group(
            await self._api.request("POST", f"/v1/groups/{gid}/requests/{acct}", body)
        )
