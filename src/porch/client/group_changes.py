"""The plumbing under every group change (porch.client.groups): server first, then the local
GroupStore, then the outbox.

Issue 7 spec B and E. The server is the authority on members and roles: a change is sent with
the revision this device knows, and a ``revision_conflict`` is answered by refetching and trying
once more. What the server answers is stored locally (GroupStore), and what the members must
hear goes into the outbox for ``g:<group id>`` (delivered to every member device): a
``group_update``, and a ``group_state_key`` when the state is sealed under a key they may not
have. A new sealed state is sealed for ``revision + 1``, the revision its upload makes.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence

from porch.client.core.group_sync import local_group
from porch.client.core.groups import GroupCrypto
from porch.client.errors import ClientError, ServerError, UsageError
from porch.client.group_api import Group, GroupApi
from porch.client.group_info import GroupInfo, group_peer, info_of
from porch.client.group_store import LocalGroup
from porch.client.store import LocalStore
from porch.crypto.content import (
    Encodable,
    GroupAction,
    GroupStateKey,
    GroupUpdate,
    encode_content,
)
from porch.crypto.errors import CryptoError
from porch.crypto.group_state import GroupState, blob_epoch, seal_group_state, state_to_json
from porch.protocol.codec import b64decode, b64encode

log = logging.getLogger("porch.client")


class GroupChanges:
    """The base of the group façade: its collaborators, and the steps its changes share."""

    def __init__(
        self,
        store: Callable[[], LocalStore],
        api: Callable[[], GroupApi],
        crypto: GroupCrypto,
        me: str,
        device_id: int,
        resolve: Callable[[str], Awaitable[str]],
        wake: Callable[[], None],
        clock: Callable[[], int],
    ) -> None:
        # Getters: the Client opens a new store and HTTP client when it is entered again.
        self._store, self._api, self._crypto = store, api, crypto
        self._me, self._device_id = me, device_id
        self._resolve, self._wake, self._clock = resolve, wake, clock

    # Changing the sealed state -------------------------------------------------------------

    async def _change_state(
        self,
        gid: str,
        change: Callable[[GroupState], GroupState],
        action: GroupAction,
        told: bool = True,
    ) -> GroupInfo:
        async def put(group: Group) -> Group:
            local = self._store().get_group(gid)
            if local is None or local.state is None:
                raise ClientError(
                    f"this device has no key for {self._label(gid)} yet, so it cannot change "
                    "its name or description; try again once a member's key has arrived"
                )
            state = checked(change(local.state))
            epoch, key = self._key(gid)
            blob = seal_group_state(key, gid, group.revision + 1, epoch, state)
            return await self._api().put_state(gid, group.revision, blob)

        current = await self._current(gid)
        before = blob_epoch(current.state)
        try:
            group_ = await self._retry_group(gid, current, put)
        except ServerError as exc:
            if exc.code != "forbidden":
                raise
            # The server says only "only admins may change the state": say which setting.
            raise ServerError(
                "forbidden",
                f"only admins can change the name, description or timer of {self._label(gid)}: "
                "its settings do not let members edit the group info; ask an admin",
                exc.status,
            ) from None
        self._put(group_)
        if blob_epoch(group_.state) != before:
            # Sealed under a key the members may not have: a rotation's, or one left unused
            # by a rotation cut short (the process ended before its state was stored; the
            # next change seals under it, and the members must be able to open it: trial2).
            self._tell(gid, self._current_key(gid))
        if told:
            self._tell(gid, GroupUpdate(gid, group_.revision, action))
        return self._info(gid)

    # Helpers ---------------------------------------------------------------------------------

    def _tell(self, gid: str, content: Encodable) -> None:
        """Queue a content for every member device of the group (recipient ``g:<id>``)."""
        store = self._store()
        store.enqueue(
            secrets.token_urlsafe(12),
            group_peer(gid),
            encode_content(content),
            False,
            self._clock(),
        )
        self._wake()

    def _info(self, gid: str) -> GroupInfo:
        local = self._store().get_group(gid)
        if local is None:
            raise UsageError(f"no group {gid[:8]} is known here")
        return info_of(local, self._me)

    def _label(self, gid: str) -> str:
        local = self._store().get_group(gid)
        return info_of(local, self._me).label if local else f"group {gid[:8]}"

    def _name(self, account: str) -> str:
        return self._store().contact_label(account)

    async def _accounts(self, members: Sequence[str]) -> list[str]:
        accounts: list[str] = []
        for m in members:
            account = await self._resolve(m)
            if account == self._me:
                raise UsageError("you are in your own groups already: name the others")
            if account not in accounts:
                accounts.append(account)
        return accounts

    async def _member(self, gid: str, member: str) -> str:
        account = await self._resolve(member)
        group = await self._current(gid)
        if group.role_of(account) is None:
            raise UsageError(f"{self._name(account)} is not a member of {self._label(gid)}")
        return account

    async def _current(self, gid: str) -> Group:
        """The group as the server has it now (stored locally on the way)."""
        try:
            group = await self._api().get(gid)
        except ServerError as exc:
            if exc.code != "not_found":
                raise
            # The server answers alike for an unknown group and one we are not in (spec B).
            raise ServerError(
                "not_found",
                f"the server knows no group {gid[:8]} with you in it (it does not exist, or "
                "you left or were removed); `porch group list` shows the groups you are in",
                exc.status,
            ) from None
        self._put(group)
        return group

    async def _fetch(self, gid: str) -> LocalGroup:
        return self._local(await self._current(gid))

    def _local(self, group: Group) -> LocalGroup:
        local = self._store().get_group(group.id)
        return local if local is not None else self._to_local(group, None)

    async def _retry(
        self, gid: str, group: Group, call: Callable[[int], Awaitable[Group]]
    ) -> Group:
        return await self._retry_group(gid, group, lambda g: call(g.revision))

    async def _retry_group(
        self, gid: str, group: Group, call: Callable[[Group], Awaitable[Group]]
    ) -> Group:
        try:
            return await call(group)
        except ServerError as exc:
            if exc.code != "revision_conflict":
                raise
        log.info("group %s changed meanwhile: refetching once", gid[:8])
        return await call(await self._current(gid))

    def _put(self, group: Group) -> None:
        store = self._store()
        store.put_group(self._to_local(group, store.get_group(group.id)))

    def _to_local(self, group: Group, old: LocalGroup | None) -> LocalGroup:
        return local_group(self._store(), self._me, group, old)

    def _key(self, gid: str) -> tuple[int, bytes]:
        latest = self._store().latest_state_key(gid)
        if latest is None:
            raise ClientError(
                f"this device has no key for {self._label(gid)} yet; try again once a "
                "member's key has arrived"
            )
        return latest

    def _current_key(self, gid: str) -> GroupStateKey:
        epoch, key = self._key(gid)
        return GroupStateKey(group=gid, epoch=epoch, key=b64encode(key))


def raw_key(key: GroupStateKey) -> bytes:
    return b64decode(key.key)


def checked(state: GroupState) -> GroupState:
    """A state within the bounds, or UsageError saying which bound (a name too long...)."""
    try:
        state_to_json(state)
    except CryptoError as exc:
        raise UsageError(
            f"{exc.message}: a group's name is 1 to 128 characters and its description at "
            "most 1 024, without control characters; choose another"
        ) from None
    return state
