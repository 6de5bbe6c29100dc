"""Groups for people: create, list, change, invite, join, send (``client.groups``).

Issue 7 spec B (the server's routes, porch.client.group_api) and E (what members tell each
other). Each change goes: the server first (the authority on members and roles; a
``revision_conflict`` is answered by refetching and trying once more), then the local
GroupStore, then the outbox: a ``group_update`` content for ``g:<group id>`` (the outbox
delivers an item with that recipient to every member device), and a ``group_state_key`` when
the key changed or someone new must be able to open the state.

The sealed state (name, description, settings) is opened with the group state key of the
epoch its blob names, bound to the revision the server stored it under (``state_revision``);
a new state is sealed for ``revision + 1``, the revision its upload makes. A member leaving or
being removed gets a new key (a new epoch) so that they cannot read the state from then on.

Sans-IO it is not (it calls the server), but it holds no connection: it needs only the HTTP
API and the store, so `porch group` commands work while another process owns the profile.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from porch.client.core.group_sync import local_group
from porch.client.core.groups import GroupCrypto
from porch.client.errors import (
    ClientError,
    ServerError,
    ServerUnreachable,
    Timeout,
    UsageError,
)
from porch.client.group_api import Group, GroupApi, Role
from porch.client.group_links import GroupLink, format_group_link, parse_group_link
from porch.client.group_store import LocalGroup
from porch.client.outgoing import queue_outgoing, with_timer
from porch.client.store import LocalStore
from porch.crypto.content import (
    Encodable,
    GroupAction,
    GroupStateKey,
    GroupUpdate,
    Text,
    encode_content,
)
from porch.crypto.errors import CryptoError
from porch.crypto.group_state import (
    GroupSettings,
    GroupState,
    blob_epoch,
    seal_group_state,
)
from porch.crypto.megolm import DAY_MS, RotationPolicy
from porch.protocol.codec import b64encode

log = logging.getLogger("porch.client")

GROUP_PEER_PREFIX: Final = "g:"  # the outbox recipient and history peer of a group
_HEX_PREFIX = re.compile(r"[0-9a-f-]{1,36}")


# The façade has a method named ``list``: inside the class, annotations use these.
Infos = list["GroupInfo"]
Ids = list[str]


def group_peer(group_id: str) -> str:
    return GROUP_PEER_PREFIX + group_id


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: str
    name: str  # "" while this device has no key that opens the state
    description: str
    revision: int
    role: Role | None  # None once this account is no longer a member
    members: tuple[tuple[str, Role], ...]  # (account id, role), sorted by account id
    pending: tuple[str, ...]  # join requests (admins see them)
    invite: bool
    settings: GroupSettings

    @property
    def label(self) -> str:
        return self.name or f"group {self.id[:8]}"


def info_of(group: LocalGroup, me: str) -> GroupInfo:
    state = group.state
    members = tuple((m.account_id, m.role) for m in group.members)
    role = next((r for a, r in members if a == me), None)
    return GroupInfo(
        id=group.group_id,
        name=state.name if state else "",
        description=state.description if state else "",
        revision=group.revision,
        role=role,
        members=members,
        pending=group.pending,
        invite=group.invite,
        settings=group.settings,
    )


class Groups:
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

    # Reading ---------------------------------------------------------------------------------

    async def list(self) -> Infos:
        """This account's groups, refreshed from the server (those whose revision moved are
        fetched again; those it is no longer in are forgotten once nothing waits to go to
        them)."""
        store = self._store()
        refs = {r.id: r.revision for r in await self._api().list_groups()}
        for gid in store.group_ids():
            if gid not in refs and not _queued_for(store, gid):
                store.forget_group(gid)
        for gid, revision in refs.items():
            local = store.get_group(gid)
            if local is None or local.revision != revision or local.state is None:
                await self._fetch(gid)
        infos = [self._info(gid) for gid in store.group_ids() if gid in refs]
        return sorted(infos, key=lambda g: (g.label.casefold(), g.id))

    async def info(self, group: str) -> GroupInfo:
        gid = self.find(group)
        await self._fetch(gid)
        return self._info(gid)

    def local(self) -> Infos:
        """The groups as last fetched, without asking the server (for labels)."""
        store = self._store()
        return [info_of(g, self._me) for gid in store.group_ids() if (g := store.get_group(gid))]

    def find(self, group: str) -> str:
        """A group id from a full id, an unambiguous prefix of a known group's id, or the
        exact name of one known group; UsageError in words otherwise."""
        text = group.strip().lower()
        if text.startswith(GROUP_PEER_PREFIX):
            text = text[len(GROUP_PEER_PREFIX) :]
        if not text:
            raise UsageError("name a group: its id, the start of its id, or its name")
        known = self._store().group_ids()
        if len(text) == 36 and text.count("-") == 4:
            return text
        found = [g for g in known if g.startswith(text)] if _HEX_PREFIX.fullmatch(text) else []
        if not found:
            found = [i.id for i in self.local() if i.name.casefold() == group.strip().casefold()]
        if len(found) == 1:
            return found[0]
        if not found:
            raise UsageError(
                f"no group of yours matches {group.strip()!r:.60}; `porch group list` shows them"
            )
        shown = ", ".join(g[:8] for g in found[:5])
        raise UsageError(
            f"{group.strip()!r:.60} matches {len(found)} groups ({shown}); "
            "give more characters of the id"
        )

    # Creating and joining --------------------------------------------------------------------

    async def create(
        self,
        name: str,
        members: Sequence[str],
        description: str = "",
        members_can_edit: bool = True,
        join_approval: bool = False,
    ) -> GroupInfo:
        accounts = await self._accounts(members)
        settings = GroupSettings(members_can_edit, join_approval)
        state = _checked(GroupState(name.strip(), description, settings=settings))
        gid = str(uuid.uuid4())
        key = self._crypto.new_state_key(gid)  # epoch 0: the group's first key
        blob = seal_group_state(_raw(key), gid, 1, key.epoch, state)
        group = await self._api().create(gid, blob, settings, accounts)
        self._put(group)
        self._tell(gid, key)
        self._tell(gid, GroupUpdate(gid, group.revision, "create", tuple(accounts)))
        return self._info(gid)

    async def invite(self, group: str) -> str:
        """A new invite link (the old one stops working); it carries the state key."""
        gid = self.find(group)
        token = await self._api().create_invite(gid)
        local = await self._fetch(gid)
        # The key that opens the state as it is now: a later key may exist here unused (a
        # rotation cut short before its state was stored), and a link with it would not
        # open the state (trial2). The joiner gets later keys as a member.
        epoch = blob_epoch(local.blob)
        key = self._store().state_key(gid, epoch)
        if key is None:
            epoch, key = self._key(gid)
        return format_group_link(GroupLink(token, key, epoch))

    async def revoke_invite(self, group: str) -> None:
        gid = self.find(group)
        await self._api().revoke_invite(gid)
        await self._fetch(gid)

    async def join(self, link: str) -> GroupInfo | None:
        """Join by an invite link; None while an admin has to approve the request."""
        parsed = parse_group_link(link)  # malformed links are refused before any I/O
        result = await self._api().join(parsed.token)
        # Kept even while pending: once approved, it opens the state.
        self._store().put_state_key(result.group_id, parsed.epoch, parsed.state_key)
        if result.group is None:
            return None
        self._put(result.group)
        self._tell(result.group_id, GroupUpdate(result.group_id, result.group.revision, "join"))
        return self._info(result.group_id)

    async def answer(self, group: str, member: str, approve: bool) -> GroupInfo:
        """Approve or deny a join request."""
        gid = self.find(group)
        account = await self._resolve(member)
        local = self._store().get_group(gid)
        if local is None or account not in local.pending:
            local = await self._fetch(gid)
        if account not in local.pending:
            raise UsageError(f"{self._name(account)} has not asked to join {self._label(gid)}")
        group_ = await self._api().answer_request(gid, account, approve)
        self._put(group_)
        if approve:
            self._tell(gid, self._current_key(gid))
            self._tell(gid, GroupUpdate(gid, group_.revision, "add", (account,)))
        return self._info(gid)

    # Members ---------------------------------------------------------------------------------

    async def add(self, group: str, members: Sequence[str]) -> GroupInfo:
        gid = self.find(group)
        accounts = await self._accounts(members)
        known = await self._current(gid)
        already = [a for a in accounts if known.role_of(a) is not None]
        if already:
            raise UsageError(f"{self._name(already[0])} is in {self._label(gid)} already")
        group_ = await self._retry(gid, known, lambda g: self._api().add_members(gid, g, accounts))
        self._put(group_)
        self._tell(gid, self._current_key(gid))  # so that the new members can open the state
        self._tell(gid, GroupUpdate(gid, group_.revision, "add", tuple(accounts)))
        return self._info(gid)

    async def remove(self, group: str, member: str) -> GroupInfo:
        gid = self.find(group)
        account = await self._member(gid, member)
        if account == self._me:
            raise UsageError("to remove yourself from a group, leave it (porch group leave)")
        known = await self._current(gid)
        group_ = await self._retry(gid, known, lambda g: self._api().remove_member(gid, account, g))
        self._put(group_)
        update = GroupUpdate(gid, group_.revision, "remove", (account,))
        self._tell(gid, update)
        # The removed member is no longer told what the group is told; the server's
        # group_changed hint reaches only a device that is online. One update over Olm tells
        # it who removed it whenever it next connects (GroupSync.failed, trial2).
        self._store().enqueue(
            secrets.token_urlsafe(12), account, encode_content(update), False, self._clock()
        )
        await self.rotate_state_key(gid)
        return self._info(gid)

    async def leave(self, group: str) -> None:
        """Leave a group. Its row stays (without this account) until the ``leave`` update
        has gone to the members; the remaining members choose the next state key."""
        gid = self.find(group)
        store = self._store()
        local = store.get_group(gid) or self._local(await self._api().get(gid))
        await self._api().leave(gid)
        others = tuple(m for m in local.members if m.account_id != self._me)
        store.put_group(replace(local, members=others, role="member", revision=local.revision + 1))
        self._tell(gid, GroupUpdate(gid, local.revision + 1, "leave"))

    async def promote(self, group: str, member: str) -> GroupInfo:
        return await self._set_role(group, member, "admin")

    async def demote(self, group: str, member: str) -> GroupInfo:
        return await self._set_role(group, member, "member")

    async def _set_role(self, group: str, member: str, role: Role) -> GroupInfo:
        gid = self.find(group)
        account = await self._member(gid, member)
        known = await self._current(gid)
        group_ = await self._retry(
            gid, known, lambda g: self._api().set_role(gid, account, g, role)
        )
        self._put(group_)
        action: GroupAction = "promote" if role == "admin" else "demote"
        self._tell(gid, GroupUpdate(gid, group_.revision, action, (account,)))
        return self._info(gid)

    # The sealed state ------------------------------------------------------------------------

    async def rename(self, group: str, name: str) -> GroupInfo:
        gid = self.find(group)
        return await self._change_state(gid, lambda s: replace(s, name=name.strip()), "state")

    async def set_description(self, group: str, description: str) -> GroupInfo:
        gid = self.find(group)
        return await self._change_state(gid, lambda s: replace(s, description=description), "state")

    async def rotate_state_key(self, group_id: str) -> GroupInfo:
        """A new state key (next epoch), the state sealed under it, the key told to the
        members: after someone left or was removed, so they cannot read what follows. Also
        starts a new Megolm session on the next send (GroupCrypto.member_removed)."""
        self._crypto.member_removed(group_id)
        self._crypto.new_state_key(group_id)
        # _change_state tells the members the new key with the state sealed under it.
        return await self._change_state(group_id, lambda s: s, "state", told=False)

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
            state = _checked(change(local.state))
            epoch, key = self._key(gid)
            blob = seal_group_state(key, gid, group.revision + 1, epoch, state)
            return await self._api().put_state(gid, group.revision, blob)

        current = await self._current(gid)
        before = blob_epoch(current.state)
        group_ = await self._retry_group(gid, current, put)
        self._put(group_)
        if blob_epoch(group_.state) != before:
            # Sealed under a key the members may not have: a rotation's, or one left unused
            # by a rotation cut short (the process ended before its state was stored; the
            # next change seals under it, and the members must be able to open it: trial2).
            self._tell(gid, self._current_key(gid))
        if told:
            self._tell(gid, GroupUpdate(gid, group_.revision, action))
        return self._info(gid)

    # Sending ---------------------------------------------------------------------------------

    async def send(self, group: str, text: str) -> str:
        """``send_text`` after asking the server who is in the group now. The outbox sends to
        the members this device last fetched (group_send), and a device that was offline
        while someone joined would leave the late joiner out of what follows for good. With
        the server out of reach the text is queued for the members known here."""
        gid = self.find(group)
        try:
            await self._current(gid)
        except (ServerUnreachable, Timeout):
            log.info("group %s: not refreshed before a send (server out of reach)", gid[:8])
        return self.send_text(gid, text)

    def send_text(self, group: str, text: str) -> str:
        """Queue a text for the group (delivered by the outbox to every member device);
        returns its client id, for Client.wait_sent. With the group's disappearing timer on
        (its sealed state), the text carries it (issue 8)."""
        gid, content = self.find(group), self.text(group, text)
        queue_outgoing(
            self._store(),
            group_peer(gid),
            content,
            device_id=self._device_id,
            me=self._me,
            now=content.ts,
        )
        self._wake()
        return content.id

    def text(self, group: str, body: str, **extras: Any) -> Text:
        """A new text for the group (``extras``: Text's issue 8 fields), after checking this
        account is a member; the group's timer applied."""
        gid = self.find(group)
        local = self._store().get_group(gid)
        if local is None or not any(m.account_id == self._me for m in local.members):
            raise UsageError(f"you are not a member of {self._label(gid)}")
        text = Text(secrets.token_urlsafe(12), body, self._clock(), group=gid, **extras)
        return with_timer(text, local.state.timer_seconds if local.state else 0)

    async def set_timer(self, group: str, seconds: int) -> GroupInfo:
        """The group's disappearing-message timer (0: off), in its sealed state (issue 8)."""
        gid = self.find(group)
        return await self._change_state(gid, lambda s: replace(s, timer_seconds=seconds), "state")

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

    async def _accounts(self, members: Sequence[str]) -> Ids:
        accounts: Ids = []
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
                "you left or were removed)",
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


def _queued_for(store: LocalStore, gid: str) -> bool:
    peer = group_peer(gid)
    return any(e.recipient == peer and e.state == "queued" for e in store.outbox_entries())


def _raw(key: GroupStateKey) -> bytes:
    from porch.protocol.codec import b64decode

    return b64decode(key.key)


def _checked(state: GroupState) -> GroupState:
    """A state within the bounds, or UsageError saying which bound (a name too long...)."""
    from porch.crypto.group_state import state_to_json

    try:
        state_to_json(state)
    except CryptoError as exc:
        raise UsageError(f"cannot use that: {exc.message}") from None
    return state


def rotation_from_env(environ: Mapping[str, str]) -> RotationPolicy:
    """The Megolm rotation policy (docs/protocol.md, "Megolm group sessions"), from
    PORCH_GROUP_ROTATE_MESSAGES (1..1000, default 100) and PORCH_GROUP_ROTATE_DAYS (default 7;
    one minute to a year). A value out of range is a UsageError saying which."""
    messages, days = (
        environ.get("PORCH_GROUP_ROTATE_MESSAGES"),
        environ.get("PORCH_GROUP_ROTATE_DAYS"),
    )
    try:
        return RotationPolicy(
            max_messages=int(messages) if messages else RotationPolicy.max_messages,
            max_age_ms=int(float(days) * DAY_MS) if days else RotationPolicy.max_age_ms,
        )
    except (ValueError, OverflowError) as exc:  # int("x"), int(nan); int(inf)
        raise UsageError(f"PORCH_GROUP_ROTATE_MESSAGES / PORCH_GROUP_ROTATE_DAYS: {exc}") from None
