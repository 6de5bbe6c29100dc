"""Keeping the local GroupStore in step with the server (issue 7 spec B, E).

A ``group_update`` from a member, or the server's ``group_changed`` hint, makes the core ask
for the group again (FetchGroup); the answer comes back through ``GroupSync.fetched``: the
group is stored with its state opened (``local_group``, shared with client.groups), a member
that disappeared starts a new Megolm session on the next send (GroupCrypto.member_removed),
and after a ``leave`` the lowest admin account's device gives the group a new state key
(RotateStateKey; the leaver must not choose it). A 404 means this account is no longer a
member (the server answers alike for an unknown group): the group is marked left here
(this account taken out of its members; history and name stay) and GroupUpdated says so.

A ``group_update`` is only a claim by whoever sent it (any contact can send one over Olm; any
member over Megolm): GroupUpdated is emitted once the fetch shows the group as the claim says
(``plausible``): the sender a member (gone after a ``leave``), an admin for what only admins
may do, the revision no later than the server's and, when the group has not changed since,
the targets where the action put them. A claim that does not match is dropped and logged,
never shown as fact. (A member who may edit can still claim an old revision for a removal
that never was: only the server's change log could refute that.)
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from porch.client.core.actions import FetchGroup, RotateStateKey, ShareStateKey
from porch.client.core.context import CoreState
from porch.client.core.groups import GroupCrypto
from porch.client.core.rich import group_timer_notice
from porch.client.errors import ClientError, ServerError
from porch.client.events import GroupUpdated, TimerChanged
from porch.client.group_store import GroupMemberRow, LocalGroup
from porch.client.store import LocalStore
from porch.crypto.content import GroupUpdate
from porch.crypto.errors import CryptoError
from porch.crypto.group_state import blob_epoch, open_group_state
from porch.failures import reason

log = logging.getLogger("porch.client")

if TYPE_CHECKING:  # porch.client.api imports the core: no import at run time
    from porch.client.group_api import Group

MAX_FETCHING = 1024  # groups asked for at once; a flood of hints beyond that is dropped
MAX_TOLD = 64  # claimed updates held per group until its fetch answers; more are dropped
# What the server lets whom do (server/services/group_rules.py): admins only, or editors
# (admins, and members too when the group's settings say members_can_edit).
ADMIN_ONLY = frozenset({"create", "promote", "demote", "settings"})
EDITORS = frozenset({"add", "remove", "state"})


def plausible(by: str, update: GroupUpdate, group: Group) -> bool:
    """Whether the fetched group bears out ``by``'s claim ``update`` (see the module doc)."""
    role = group.role_of(by)
    if update.revision > group.revision:
        return False
    if update.action == "leave":
        return role is None
    if role is None or (update.action in ADMIN_ONLY and role != "admin"):
        return False
    if update.action in EDITORS and role != "admin" and not group.settings.members_can_edit:
        return False
    if update.revision < group.revision:
        return True  # changed since: where its targets are now says nothing of this claim
    where = {a: group.role_of(a) for a in update.targets}
    match update.action:
        case "remove":
            return all(r is None for r in where.values())
        case "promote":
            return all(r == "admin" for r in where.values())
        case "demote":
            return all(r == "member" for r in where.values())
    return True


def local_group(store: LocalStore, me: str, group: Group, old: LocalGroup | None) -> LocalGroup:
    """The server's group with its state opened, if this device has the key (else the state
    it opened before, which stays until a newer one opens)."""
    state, state_revision = (old.state, old.state_revision) if old else (None, 0)
    try:
        key = store.state_key(group.id, blob_epoch(group.state))
        if key is not None:
            state = open_group_state(
                key, group.id, group.state_revision, group.state, min_revision=state_revision
            )
            state_revision = group.state_revision
    except CryptoError as exc:
        log.warning("group %s: its state does not open: %s", group.id[:8], exc.code)
    role = group.role_of(me) or "member"
    return LocalGroup(
        group_id=group.id,
        revision=group.revision,
        role=role,
        blob=group.state,
        settings=group.settings,
        invite=group.invite,
        members=tuple(GroupMemberRow(m.account, m.role) for m in group.members),
        pending=group.pending,
        state=state,
        state_revision=state_revision,
    )


class GroupSync:
    def __init__(self, state: CoreState, crypto: GroupCrypto) -> None:
        self._state, self._crypto = state, crypto
        self._fetching: set[str] = set()
        self._again: set[str] = set()  # asked for again while a fetch was out
        self._left: set[str] = set()  # a member left: choose a new state key if it is ours
        self._told: dict[str, list[tuple[str, GroupUpdate]]] = {}  # claims awaiting a fetch
        self._later: dict[str, list[tuple[str, GroupUpdate]]] = {}  # ... the fetch after that
        # group id -> the revision whose only change was the timer (told as TimerChanged)
        self._timer_only: dict[str, int] = {}

    def told(self, by: str, update: GroupUpdate) -> None:
        """``by`` claims ``update``: fetch the group, and say so once the fetch bears it out."""
        # A fetch already out may have left before the change was made: the next one judges.
        told = self._later if update.group in self._fetching else self._told
        claims = told.setdefault(update.group, [])
        if len(claims) < MAX_TOLD and len(told) <= MAX_FETCHING:
            claims.append((by, update))
        else:
            log.info("too many group updates awaiting a fetch: one dropped")
        left = update.action == "leave" and by != self._state.account_id
        self.fetch(update.group, left=left)

    def fetch(self, group_id: str, left: bool = False) -> None:
        """Ask for the group (once at a time; a hint during a fetch fetches once more)."""
        if left:
            self._left.add(group_id)
        if group_id in self._fetching:
            self._again.add(group_id)
            return
        if len(self._fetching) >= MAX_FETCHING:
            log.info("too many group fetches at once: one dropped")
            return
        self._fetching.add(group_id)
        self._state.out.append(FetchGroup(group_id))

    def reset(self) -> None:
        self._fetching.clear()
        self._again.clear()
        self._told.clear()
        self._later.clear()

    def _done(self, group_id: str) -> None:
        self._fetching.discard(group_id)
        if later := self._later.pop(group_id, None):
            self._told[group_id] = later
        if group_id in self._again:
            self._again.discard(group_id)
            self.fetch(group_id)

    def fetched(self, group: Group) -> None:
        state, store, me = self._state, self._state.store, self._state.account_id
        old = store.get_group(group.id)
        new = local_group(store, me, group, old)
        store.put_group(new)
        members = {m.account_id for m in new.members}
        gone = {m.account_id for m in old.members} - members if old is not None else set()
        if gone:
            self._crypto.member_removed(group.id)  # no key of ours for whoever went
            # ... and theirs are closed: a removed member sending on with the session it had
            # must not be read as the group's (trial2; GroupReceiver refuses it).
            self._crypto.close(group.id, gone)
        if old is not None and me in members and all(m.account_id != me for m in old.members):
            # Back in after a removal: the members dropped our old session; start a new one.
            self._crypto.member_removed(group.id)
        admins = sorted(m.account_id for m in new.members if m.role == "admin")
        lowest_admin = bool(admins) and admins[0] == me
        if group.id in self._left:
            self._left.discard(group.id)
            if lowest_admin:
                state.out.append(RotateStateKey(group.id))
        if lowest_admin and old is not None and members - {m.account_id for m in old.members}:
            # Someone is new: one who joined by link holds the key of the epoch the link was
            # made in, and a member may have left since (an add or an approval told the key
            # already; a second copy is harmless: the first key of an epoch wins).
            state.out.append(ShareStateKey(group.id))
        told = self._told.pop(group.id, [])
        changer = next((b for b, u in told if u.action == "state" and plausible(b, u, group)), "")
        if (seconds := group_timer_notice(state, old, new, changer)) is not None:
            state.emit(TimerChanged("g:" + group.id, seconds, changer))
            # Only the timer changed: the TimerChanged (and its notice line) says it all, not
            # a "changed the name or description" beside it.
            assert old is not None and old.state is not None and new.state is not None
            if replace(old.state, timer_seconds=0) == replace(new.state, timer_seconds=0):
                self._timer_only[group.id] = group.revision
        for by, update in told:
            # The claim may come with a later fetch than the one that saw the change.
            if update.action == "state" and self._timer_only.get(group.id) == update.revision:
                continue
            if plausible(by, update, group):
                state.emit(
                    GroupUpdated(group.id, update.revision, by, update.action, update.targets)
                )
            else:
                log.info(
                    "group %s: an update from %s does not match it: dropped", group.id[:8], by[:8]
                )
        self._done(group.id)

    def failed(self, group_id: str, error: ClientError) -> None:
        # Gone is final, whenever the claims came: judge them all by the last known group.
        claims = self._told.pop(group_id, []) + self._later.pop(group_id, [])
        self._done(group_id)
        if not (isinstance(error, ServerError) and error.code == "not_found"):
            log.info("group %s could not be fetched: %s", group_id[:8], reason(error))
            return
        state, store, me = self._state, self._state.store, self._state.account_id
        local = store.get_group(group_id)
        if local is None or all(m.account_id != me for m in local.members):
            return  # unknown here, or left already
        others = tuple(m for m in local.members if m.account_id != me)
        store.put_group(replace(local, members=others, role="member"))
        self._left.discard(group_id)
        # Who removed us, if a member as this device last knew the group said so ("" if not).
        members = {m.account_id for m in local.members}
        by = next(
            (b for b, u in claims if u.action == "remove" and me in u.targets and b in members),
            "",
        )
        state.emit(GroupUpdated(group_id, local.revision, by, "remove", (me,)))
