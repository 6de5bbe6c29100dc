"""Messages as `porch chat` shows them: replies, reactions, edits, deletes, attachments, the
disappearing timer (issue 8), and each line's time and tick.

A reply shows its quote on a line above; reactions go on a line below; an edited or forwarded
message says so; a deleted one reads "This message was deleted"; an attachment shows as
"📎 name (size)", a photo as "[photo WxH]"; a notice the client wrote is centred. Received
messages sit on the left with their time in a column; sent ones on the right with their tick.
The composer's commands for them are in porch.tui.commands. Everything someone else chose goes
through `printable`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from porch.cli.text import printable
from porch.client.quotes import quote_text
from porch.client.retry import NOTICE, UNDECRYPTABLE

if TYPE_CHECKING:
    from porch.client import Client
    from porch.client.history import HistoryMessage
    from porch.crypto.rich import Attachment

DELETED = "This message was deleted"
TICKS = {
    "pending": ("⧗", "dim"),
    "sent": ("✓", "dim"),
    "delivered": ("✓✓", "dim"),
    "read": ("✓✓", "bold cyan"),
    "failed": ("✗ not sent", "bold red"),
    "cancelled": ("✗ cancelled", "bold red"),
}
PAUSED_LINE = "⏸ waiting: safety number changed (porch verify to compare or --accept)"


def clock(ts: int) -> str:
    when = datetime.fromtimestamp(ts / 1000)
    if when.date() == datetime.now().date():
        return when.strftime("%H:%M")
    return when.strftime("%b %d %H:%M")


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


def message_line(
    msg: HistoryMessage,
    label: Callable[[str], str],
    author: Callable[[str | None], str],
    failed: bool,
    paused: bool,
) -> tuple[RenderableType, str]:
    """One message of the history pane and its plain text. ``author`` prefixes a received
    group message with who wrote it; ``failed`` and ``paused`` (an outbox item waiting for a
    changed key's acceptance) override a sent message's tick."""
    if msg.status in (UNDECRYPTABLE, NOTICE):  # written by the client, not by the peer
        notice = Text("! " + printable(msg.text, multiline=True), style="bold yellow")
        notice.justify = "center"
        return notice, notice.plain
    text = body(msg)  # with attachments, "(edited)", the deleted marker
    if not msg.outgoing and msg.author:  # a group message: say who wrote it
        text = author(msg.author) + text
    if not msg.outgoing:  # a grid, so that long lines wrap under the text, not the time
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(ratio=1)
        grid.add_row(clock(msg.ts), Text(text))
        return decorate(msg, grid, f"{clock(msg.ts)}  {text}", label)
    line = Text(text + "  ", style="green", justify="right")
    line.append(clock(msg.ts) + " ", style="dim")
    if failed:
        line.append("✗ not sent", style="bold red")
    elif paused and msg.status == "pending":
        line.append(PAUSED_LINE, style="bold yellow")
    else:
        mark, style = TICKS.get(msg.status, ("?", "dim"))
        line.append(mark, style=style)
        if msg.status == "read":
            line.append(" read", style=style)
    return decorate(msg, line, line.plain, label)
