"""Rich messages in `porch chat`: replies, reactions, edits, deletes, attachments and the
disappearing timer (issue 8), and the composer's commands for them.

A reply shows its quote on a line above; reactions go on a line below; an edited or forwarded
message says so; a deleted one reads "This message was deleted"; an attachment shows as
"📎 name (size)", a photo as "[photo WxH]". The commands act on the conversation's latest
message (`/reply TEXT`, `/react EMOJI`, `/react` alone to remove yours) or on your own latest
one (`/edit TEXT`, `/delete`); `/timer 1d` or `/timer off` sets disappearing messages.
Everything someone else chose goes through `printable`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from rich.console import Group, RenderableType
from rich.text import Text

from porch.cli.text import printable
from porch.client.quotes import quote_text
from porch.client.retry import NOTICE, UNDECRYPTABLE

if TYPE_CHECKING:
    from porch.client import Client
    from porch.client.history import HistoryMessage
    from porch.crypto.rich import Attachment

COMMANDS = ("/reply", "/react", "/edit", "/delete", "/timer")
DELETED = "This message was deleted"


def describe_attachment(a: Attachment) -> str:
    from porch.cli.rich import human_size

    if a.content_type.startswith("image/") and a.width and a.height:
        return f"[photo {a.width}\u00d7{a.height}]"
    kind = "voice note " if a.voice else ""
    name = printable(a.name) if a.name else printable(a.content_type)
    return f"📎 {kind}{name} ({human_size(a.size)})"


def body(msg: HistoryMessage) -> str:
    """The printable text of a message as the conversation shows it."""
    if msg.deleted:
        return DELETED
    parts = [describe_attachment(a) for a in msg.attachments]
    if msg.text:
        parts.append(printable(msg.text, multiline=True))
    marks = [m for m, on in (("(forwarded)", msg.forwarded), ("(edited)", msg.edited)) if on]
    return "\n".join(parts) + (" " + " ".join(marks) if marks else "")


def decorate(
    msg: HistoryMessage, main: RenderableType, plain: str, label: Callable[[str], str]
) -> tuple[RenderableType, str]:
    """The message's line with its quote above and its reactions below."""
    above: list[Text] = []
    below: list[Text] = []
    justify: Literal["right", "left"] = "right" if msg.outgoing else "left"
    if msg.reply is not None and not msg.deleted:
        quote = f"┆ {printable(quote_text(msg.reply, msg.reply_found, label(msg.reply.author)))}"
        above.append(Text(quote, style="dim italic", justify=justify))
    if msg.reactions:
        shown = "  ".join(f"{printable(e)} {label(r)}" for r, e in msg.reactions)
        below.append(Text(shown, style="bold", justify=justify))
    if not above and not below:
        return main, plain
    lines = [t.plain for t in above] + [plain] + [t.plain for t in below]
    return Group(*above, main, *below), "\n".join(lines)


def timer_mark(client: Client, peer: str) -> str:
    from porch.client.core.rich import describe_seconds

    seconds = client.timer_of(peer)
    return f"  ⏱ {describe_seconds(seconds)}" if seconds else ""


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
