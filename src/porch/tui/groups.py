"""Groups in `porch chat`: group conversations beside 1:1 ones, their labels, and group
changes as system lines in the group's conversation (spec E).

A group conversation's peer is ``g:<group id>`` (the history and outbox name, see
porch.client.groups); its label is the group's name. Changes (GroupUpdated) are kept in memory
for the session and shown among the messages by time; the history itself holds only texts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from porch.cli.text import printable
from porch.client.group_info import GROUP_PEER_PREFIX, group_peer
from porch.client.group_view import describe_update
from porch.client.store import Conversation

if TYPE_CHECKING:
    from porch.client import Client, GroupUpdated

MAX_SYSTEM_LINES = 200  # per group, for one session


def is_group(peer: str | None) -> bool:
    return peer is not None and peer.startswith(GROUP_PEER_PREFIX)


@dataclass(frozen=True, slots=True)
class SystemLine:
    ts: int
    text: str


class GroupView:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.lines: dict[str, list[SystemLine]] = {}

    def label(self, peer: str) -> str:
        """A printable label: the group's name for a group peer, else the contact's."""
        if is_group(peer):
            gid = peer[len(GROUP_PEER_PREFIX) :]
            known = {g.id: g.label for g in self.client.groups.local()}
            return printable(known.get(gid, f"group {gid[:8]}"))
        return printable(self.client.label(peer))

    def conversations(self) -> list[Conversation]:
        """The store's conversations, then the groups that have no messages yet."""
        convs = self.client.conversations()
        seen = {c.peer for c in convs}
        for g in self.client.groups.local():
            if g.role is not None and group_peer(g.id) not in seen:
                convs.append(Conversation(group_peer(g.id), 0, "(no messages yet)", 0))
        return convs

    def author(self, author: str | None) -> str:
        return "" if author is None else f"{printable(self.client.label(author))}: "

    def update(self, event: GroupUpdated) -> str:
        """Record a change as a system line of its group; returns the sentence."""

        def name(account: str) -> str:
            return "you" if account == self.client.account_id else self.client.label(account)

        text = describe_update(event, name, self.label(group_peer(event.group)))
        lines = self.lines.setdefault(group_peer(event.group), [])
        lines.append(SystemLine(time.time_ns() // 1_000_000, text))
        del lines[:-MAX_SYSTEM_LINES]
        return text

    def system_lines(self, peer: str) -> list[SystemLine]:
        return self.lines.get(peer, [])
