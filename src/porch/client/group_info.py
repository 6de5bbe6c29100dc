"""What a group looks like to this account (GroupInfo), and the peer name of a group.

A group's conversation, outbox recipient and history peer is ``g:<group id>``; GroupInfo is the
façade's answer (porch.client.groups) from the local GroupStore row: the name and description
("" while this device has no key that opens the sealed state), the members and roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from porch.client.group_api import Role
from porch.client.group_store import LocalGroup
from porch.crypto.group_state import GroupSettings

GROUP_PEER_PREFIX: Final = "g:"  # the outbox recipient and history peer of a group


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
