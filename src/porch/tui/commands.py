"""The composer's lines in `porch chat`: `/to`, the rich-message commands, and plain texts.

The commands act on the conversation's latest message (`/reply TEXT`, `/react EMOJI`, `/react`
alone to remove yours) or on your own latest one (`/edit TEXT`, `/delete`); `/timer 1d` or
`/timer off` sets disappearing messages (issue 8); `/to @name` opens a conversation. Anything
else is a text for the open conversation, queued without waiting (the ticks show when it went).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from porch.client.retry import NOTICE, UNDECRYPTABLE
from porch.tui.groups import is_group

if TYPE_CHECKING:
    from porch.client import Client
    from porch.client.history import HistoryMessage

COMMANDS = ("/reply", "/react", "/edit", "/delete", "/timer")
OPEN = "/to "


def is_command(line: str) -> bool:
    """A rich-message command (/reply, /react, /edit, /delete, /timer), not a text."""
    return line.split(" ", 1)[0] in COMMANDS


def recipient(line: str) -> str | None:
    """Whom a `/to` line opens a conversation with; None for any other line."""
    return line[len(OPEN) :].strip() if line.startswith(OPEN) else None


async def send_text(client: Client, peer: str, text: str) -> None:
    """Queue a text for the open conversation: a group's through its façade, else 1:1."""
    if is_group(peer):
        client.groups.send_text(peer, text)
    else:
        await client.send_text(peer, text, wait=False)


def _latest(client: Client, peer: str, own: bool) -> HistoryMessage | None:
    for m in reversed(client.history(peer, 200)):
        if m.status in (NOTICE, UNDECRYPTABLE) or m.deleted:
            continue
        if not own or m.outgoing:
            return m
    return None


async def run_command(client: Client, peer: str, line: str) -> str:
    """Do what a composer command asks in ``peer``'s conversation; returns what to tell the
    user. Raises ClientError (UsageError for a mistake) like the SDK does."""
    from porch.cli.rich import parse_duration
    from porch.client.errors import UsageError

    command, _, rest = line.partition(" ")
    rest = rest.strip()
    if command == "/timer":
        seconds = parse_duration(rest or "off")
        await client.set_timer(peer, seconds, wait=False)
        return "Disappearing messages " + ("turned off" if not seconds else "set")
    own = command in ("/edit", "/delete")
    target = _latest(client, peer, own)
    if target is None:
        mine = "of yours " if own else ""
        raise UsageError(f"there is no message {mine}here to {command[1:]}")
    author = client.account_id if target.outgoing else (target.author or target.peer)
    if command == "/reply":
        if not rest:
            raise UsageError("type the reply after /reply")
        await client.reply(peer, target.client_id, rest, author=author, wait=False)
        return "Replied"
    if command == "/react":
        await client.react(peer, target.client_id, rest, author=author, wait=False)
        return "Reaction removed" if not rest else "Reacted"
    if command == "/edit":
        if not rest:
            raise UsageError("type the new text after /edit")
        await client.edit(peer, target.client_id, rest, wait=False)
        return "Edited"
    await client.delete(peer, target.client_id, wait=False)
    return "Deleted for everyone"
