"""Groups for people: create, list, change, invite, join, send (``client.groups``).

Issue 7 spec B (the server's routes, porch.client.group_api) and E (what members tell each
other). Each change goes: the server first (the authority on members and roles; a
``revision_conflict`` is answered by refetching and trying once more), then the local
GroupStore, then the outbox: a ``group_update`` content for ``g:<group id>`` (the outbox
delivers an item with that recipient to every member device), and a ``group_state_key`` when
the key changed or someone new must be able to open the state. Those shared steps are in
porch.client.group_changes (GroupChanges, this façade's base); GroupInfo is in group_info.

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
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from porch.client.core.context import new_message_id
from porch.client.errors import ServerUnreachable, Timeout, UsageError
from porch.client.group_api import Group, Role
from porch.client.group_changes import GroupChanges, checked, raw_key
from porch.client.group_info import GROUP_PEER_PREFIX, GroupInfo, group_peer, info_of
from porch.client.group_links import GroupLink, format_group_link, parse_group_link
from porch.client.outgoing import queue_outgoing, with_timer
from porch.client.store import LocalStore
from porch.crypto.content import GroupAction, GroupUpdate, Text, encode_content
from porch.crypto.group_state import GroupSettings, GroupState, blob_epoch, seal_group_state
from porch.crypto.megolm import DAY_MS, RotationPolicy

__all__ = ["GROUP_PEER_PREFIX", "GroupInfo", "Groups", "group_peer", "info_of", "rotation_from_env"]

log = logging.getLogger("porch.client")

_HEX_PREFIX = re.compile(r"[0-9a-f-]{1,36}")


# The façade has a method named ``list``: inside the class, annotations use this.
Infos = list["GroupInfo"]


class Groups(GroupChanges):
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
        state = checked(GroupState(name.strip(), description, settings=settings))
        gid = str(uuid.uuid4())
        key = self._crypto.new_state_key(gid)  # epoch 0: the group's first key
        blob = seal_group_state(raw_key(key), gid, 1, key.epoch, state)
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

    async def revoke_invite(self, group: str) -> GroupInfo:
        """Turn the invite link off (joining by it is ``not_found`` from then on)."""
        gid = self.find(group)
        await self._api().revoke_invite(gid)
        await self._fetch(gid)
        return self._info(gid)

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
            new_message_id(), account, encode_content(update), False, self._clock()
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

    async def set_settings(
        self,
        group: str,
        members_can_edit: bool | None = None,
        join_approval: bool | None = None,
    ) -> GroupInfo:
        """Change the group's settings (admins only; None keeps a setting as it is).

        The settings live twice (docs/protocol.md, "Groups" and "Sealed group state"): the
        server's copy, which it enforces, and the sealed state's, which create writes from the
        same GroupSettings. A change goes to the server first (the authority), then into the
        state sealed for the next revision, and one ``settings`` update tells the members.
        """
        gid = self.find(group)

        def wanted(g: Group) -> GroupSettings:
            s = g.settings
            return GroupSettings(
                s.members_can_edit if members_can_edit is None else bool(members_can_edit),
                s.join_approval if join_approval is None else bool(join_approval),
            )

        known = await self._current(gid)
        if known.role_of(self._me) != "admin":
            raise UsageError(
                f"only admins can change the settings of {self._label(gid)}; ask an admin"
            )
        group_ = known
        if wanted(known) != known.settings:
            group_ = await self._retry_group(
                gid, known, lambda g: self._api().put_settings(gid, g.revision, wanted(g))
            )
            self._put(group_)
        settings, local = group_.settings, self._store().get_group(gid)
        if local is not None and local.state is not None and local.state.settings != settings:
            # The sealed copy in step with the server's (members read it with the name).
            return await self._change_state(gid, _with_settings(settings), "settings")
        if group_.revision != known.revision:  # no key to seal with here: the server's change
            self._tell(gid, GroupUpdate(gid, group_.revision, "settings"))
        return self._info(gid)

    def share_state_key(self, group_id: str) -> None:
        """Tell the members the current state key (someone joined by a link that may hold an
        older one: ShareStateKey). Nothing without a key here."""
        if self._store().latest_state_key(group_id) is not None:
            self._tell(group_id, self._current_key(group_id))

    async def rotate_state_key(self, group_id: str) -> GroupInfo:
        """A new state key (next epoch), the state sealed under it, the key told to the
        members: after someone left or was removed, so they cannot read what follows. Also
        starts a new Megolm session on the next send (GroupCrypto.member_removed)."""
        self._crypto.member_removed(group_id)
        self._crypto.new_state_key(group_id)
        # _change_state tells the members the new key with the state sealed under it.
        return await self._change_state(group_id, lambda s: s, "state", told=False)

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
        text = Text(new_message_id(), body, self._clock(), group=gid, **extras)
        return with_timer(text, local.state.timer_seconds if local.state else 0)

    async def set_timer(self, group: str, seconds: int) -> GroupInfo:
        """The group's disappearing-message timer (0: off), in its sealed state (issue 8)."""
        gid = self.find(group)
        return await self._change_state(gid, lambda s: replace(s, timer_seconds=seconds), "state")


def _with_settings(settings: GroupSettings) -> Callable[[GroupState], GroupState]:
    return lambda s: replace(s, settings=settings)


def _queued_for(store: LocalStore, gid: str) -> bool:
    peer = group_peer(gid)
    return any(e.recipient == peer and e.state == "queued" for e in store.outbox_entries())


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
