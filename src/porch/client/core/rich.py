"""Rich messages in the client core: what a text's extras become in the store and in events,
and the rules for reactions, edits, deletes and timers (issue 8; docs/design.md, "Rich
messages").
"""

from __future__ import annotations

from porch.client.events import Message
from porch.client.history import MessageExtra
from porch.crypto.content import Text


def text_extra(text: Text) -> MessageExtra:
    return MessageExtra(text.attachments, text.reply, text.forwarded, body_ts=None)


def expires_at(text: Text) -> int | None:
    """When a disappearing text goes: from its send time, so every device agrees (spec §3)."""
    return None if text.expires is None else text.ts + text.expires * 1000


def message_event(
    text: Text,
    sender: str,
    device: int,
    server_ts: int,
    *,
    group: str | None = None,
    outgoing: bool = False,
    to: str | None = None,
) -> Message:
    return Message(
        text.id,
        sender,
        device,
        text.body,
        text.ts,
        server_ts,
        group=group,
        outgoing=outgoing,
        to=to,
        attachments=text.attachments,
        reply=text.reply,
        forwarded=text.forwarded,
        expires_at=expires_at(text),
    )
