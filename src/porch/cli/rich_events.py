"""What `porch recv` prints for a reaction, an edit or a delete someone made (issue 8).

These change a message already in history rather than add one, so they are not in the
"unshown" lines: they are printed as they arrive, one line each, like a group change ("* ").
The sentence is built from the raw texts and escaped once where it is printed (`printable`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from porch.cli.text import printable

if TYPE_CHECKING:
    from porch.client import Client, MessageDeleted, MessageEdited, ReactionChanged
    from porch.client.history import HistoryMessage

    RichEvent = ReactionChanged | MessageEdited | MessageDeleted

PREVIEW_CHARS = 40  # of a quoted message body in the line (the full text is in history)


def preview(text: str) -> str:
    """A message body on one line, cut to PREVIEW_CHARS, in curly quotes."""
    flat = " ".join(text.split())
    cut = flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"
    return f"\u201c{cut}\u201d"


def _body(m: HistoryMessage | None) -> str:
    if m is None or m.deleted:
        return "a message"
    if m.text:
        return preview(m.text)
    if m.attachments:  # a file sent without a caption
        a = m.attachments[0]
        return preview(f"📎 {a.name or a.content_type}")
    return "a message"


def describe(event: RichEvent, who: str, target: HistoryMessage | None, where: str = "") -> str:
    """One sentence: ``who`` (a label) did ``event`` to ``target`` (the message as history
    holds it now: an edit is applied already, its earlier body is the last of ``edits``)."""
    from porch.client import MessageEdited, ReactionChanged

    suffix = f" in {where}" if where else ""
    if isinstance(event, ReactionChanged):
        if not event.emoji:
            return f"{who} removed their reaction to {_body(target)}{suffix}"
        return f"{who} reacted {event.emoji} to {_body(target)}{suffix}"
    if isinstance(event, MessageEdited):
        before = target.edits[-1][1] if target is not None and target.edits else None
        after = preview(event.text)
        if before is None:
            return f"{who} edited a message{suffix} \u2192 {after}"
        return f"{who} edited {preview(before)} \u2192 {after}{suffix}"
    return f"{who} deleted a message{suffix}"


def record(event: RichEvent, text: str) -> dict[str, Any]:
    """The `porch recv --json` line for a reaction, edit or delete."""
    from porch.client import MessageEdited, ReactionChanged

    group = event.peer[2:] if event.peer.startswith("g:") else None
    base: dict[str, Any] = {"peer": event.peer, "group": group, "id": event.id}
    if isinstance(event, ReactionChanged):
        extra = {"type": "reaction", "from": event.reactor, "author": event.author}
        return {**extra, **base, "emoji": event.emoji, "text": text}
    if isinstance(event, MessageEdited):
        extra = {"type": "edit", "from": event.author, "author": event.author}
        return {**extra, **base, "body": event.text, "ts": event.ts, "text": text}
    return {"type": "delete", "from": event.author, "author": event.author, **base, "text": text}


async def print_rich_event(client: Client, event: RichEvent, as_json: bool) -> None:
    from porch.client import MessageDeleted, ReactionChanged

    if isinstance(event, MessageDeleted) and event.expired:
        return  # a disappearing message's time came: it just goes, as on the sender's side
    actor = event.reactor if isinstance(event, ReactionChanged) else event.author
    who = "you" if actor == client.account_id else await client.name_of(actor)
    where = ""
    if event.peer.startswith("g:"):
        known = {g.id: g.label for g in client.groups.local()}
        where = known.get(event.peer[2:], f"group {event.peer[2:10]}")
    target = client.message(event.peer, event.id, event.author)
    text = describe(event, who, target, where)
    if as_json:
        print(json.dumps(record(event, text), ensure_ascii=False), flush=True)
    else:
        print(f"* {printable(text)}", flush=True)
