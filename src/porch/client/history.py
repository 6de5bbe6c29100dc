"""What a stored message is, and how its sealed parts are bound to its row.

A message row holds the body and, since issue 8, an ``extra`` blob: a compact JSON object with
the attachment pointers (in their wire form, docs/protocol.md "Content object"), the reply
quote, the forwarded flag and the edit history. Both are sealed with the profile key, the
associated data naming the row (peer, direction, client id and, in groups, author), so a blob
copied to another row does not open (docs/security.md, "Client store").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from porch.crypto.at_rest import Sealer
from porch.crypto.errors import ContentError
from porch.crypto.rich import (
    Attachment,
    Quote,
    attachment_from_obj,
    attachment_to_obj,
    quote_from_obj,
    quote_to_obj,
)

# Earlier versions kept per message: an edit past this many is ignored (Signal allows 10).
MAX_EDITS = 20


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    peer: str
    client_id: str
    outgoing: bool
    sender_device: int
    ts: int
    text: str
    status: str
    author: str | None = None  # who wrote it, in a group conversation (peer "g:<id>")
    attachments: tuple[Attachment, ...] = ()
    reply: Quote | None = None
    forwarded: bool = False
    edited: bool = False
    deleted: bool = False  # deleted for everyone: text and attachments are gone
    reactions: tuple[tuple[str, str], ...] = ()  # (reactor account, emoji)
    expires_at: int | None = None  # ms; a disappearing message is removed then
    edits: tuple[tuple[int, str], ...] = ()  # earlier (ts, body) versions, oldest first
    # True when ``reply.body`` is the local original's text (porch.client.quotes), False
    # when the original is unknown here and the body is only the replier's claim.
    reply_found: bool = False


@dataclass(frozen=True, slots=True)
class MessageExtra:
    """The sealed ``extra`` of a message row; all defaults means no blob is stored."""

    attachments: tuple[Attachment, ...] = ()
    reply: Quote | None = None
    forwarded: bool = False
    edits: tuple[tuple[int, str], ...] = ()
    # When the current body was written: the original's ts, or the last edit's.
    body_ts: int | None = None

    @property
    def empty(self) -> bool:
        return self == MessageExtra()


def body_aad(peer: str, outgoing: bool | int, client_id: str, author: str | None) -> bytes:
    """What a message body's sealing binds: its row's identity (the author too in groups)."""
    base = f"msg:{peer}:{int(outgoing)}:{client_id}"
    return (base + f":{author}" if author else base).encode()


def extra_aad(peer: str, outgoing: bool | int, client_id: str, author: str | None) -> bytes:
    return b"extra:" + body_aad(peer, outgoing, client_id, author)


def seal_extra(sealer: Sealer, extra: MessageExtra | None, aad: bytes) -> bytes | None:
    if extra is None or extra.empty:
        return None
    obj: dict[str, Any] = {}
    if extra.attachments:
        obj["att"] = [attachment_to_obj(a) for a in extra.attachments]
    if extra.reply is not None:
        obj["reply"] = quote_to_obj(extra.reply)
    if extra.forwarded:
        obj["fwd"] = True
    if extra.edits:
        obj["edits"] = [[ts, body] for ts, body in extra.edits]
    if extra.body_ts is not None:
        obj["bts"] = extra.body_ts
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return sealer.seal(raw, aad=aad)


def open_extra(sealer: Sealer, blob: bytes | None, aad: bytes) -> MessageExtra:
    """The extra of a row (all defaults without a blob). The blob was written by this device,
    so a malformed one means a corrupt store: it reads as no extra rather than failing the
    whole history."""
    if blob is None:
        return MessageExtra()
    raw = sealer.open(blob, aad=aad)  # a blob moved to another row raises DecryptError here
    try:
        obj = json.loads(raw.decode("utf-8"))
        reply = obj.get("reply")
        return MessageExtra(
            attachments=tuple(attachment_from_obj(a) for a in obj.get("att", ())),
            reply=None if reply is None else quote_from_obj(reply),
            forwarded=bool(obj.get("fwd", False)),
            edits=tuple((int(ts), str(body)) for ts, body in obj.get("edits", ())),
            body_ts=obj.get("bts"),
        )
    except (ContentError, TypeError, ValueError, AttributeError):
        return MessageExtra()
