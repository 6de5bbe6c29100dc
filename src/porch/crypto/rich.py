"""Rich message contents: attachment pointers, reply quotes, reactions, edits, deletes and
disappearing-message timers (issue 8 spec §3; docs/protocol.md, "Content object").

Pure data and validation: :mod:`porch.crypto.content` dispatches to these functions, and the
client core decides what a kind does (who may edit, the delete window). Every field has a bound,
and decoding validates exactly what encoding emits, so ``decode(encode(x)) == x`` and a
malformed object fails as one :class:`~porch.crypto.errors.ContentError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from porch.crypto.attachment import DIGEST_BYTES, KEY_BYTES
from porch.crypto.content_checks import (
    MAX_SAFE_INTEGER,
    check_bool,
    check_int,
    check_str,
    check_ts,
    fail,
    validate_account,
    validate_b64,
    validate_body,
    validate_group_id,
    validate_id,
)
from porch.protocol.codec import b64encode

MAX_ATTACHMENTS = 10
MAX_CONTENT_TYPE_CHARS = 128
MAX_NAME_BYTES = 255
MAX_DIMENSION = 65535
MAX_THUMBNAIL_BYTES = 16384
MAX_BLURHASH_CHARS = 100
MAX_QUOTE_CHARS = 200
MAX_EMOJI_BYTES = 32
# Disappearing timers: up to a year, as the sealed group state's timer (group_state.py).
MAX_TIMER_SECONDS = 31_536_000
# Delete for everyone (and edits) are honoured only this long after the original's ts.
DELETE_WINDOW_MS = 48 * 3600 * 1000

MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{22}")
# RFC 6838 restricted names, type "/" subtype, no parameters.
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_BLURHASH = re.compile(r"[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]{6,100}")


@dataclass(frozen=True)
class Attachment:
    """A pointer to an encrypted blob on the server: its media id, the 64-byte key, the
    SHA-256 digest of the blob and the plaintext size, plus what a client shows before (or
    without) downloading it. Forwarding re-sends the same pointer."""

    id: str
    key: bytes
    digest: bytes
    size: int
    content_type: str
    name: str | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    thumbnail: bytes | None = None
    blurhash: str | None = None
    voice: bool = False


@dataclass(frozen=True)
class Quote:
    """What a reply quotes: the quoted message's client id and author, and a short preview."""

    id: str
    author: str
    body: str = ""


@dataclass(frozen=True)
class Reaction:
    """``author`` reacts to message ``id`` of ``author``'s; an empty emoji removes it."""

    id: str
    author: str
    emoji: str
    ts: int
    group: str | None = None


@dataclass(frozen=True)
class Edit:
    """A new body for the sender's own message ``id``."""

    id: str
    body: str
    ts: int
    group: str | None = None


@dataclass(frozen=True)
class Delete:
    """Delete the sender's own message ``id`` for everyone."""

    id: str
    ts: int
    group: str | None = None


@dataclass(frozen=True)
class Timer:
    """The disappearing-message timer of a 1:1 conversation; 0 turns it off."""

    seconds: int
    ts: int


@dataclass(frozen=True)
class TextExtras:
    """The optional fields a text gained in issue 8; defaults leave the wire unchanged."""

    attachments: tuple[Attachment, ...] = ()
    reply: Quote | None = None
    forwarded: bool = False
    expires: int | None = None


RichKind = Reaction | Edit | Delete | Timer
RICH_KINDS = ("reaction", "edit", "delete", "timer")


def _b64(value: Any, what: str) -> str:
    if not isinstance(value, bytes):
        fail(f"{what} must be bytes")
    return b64encode(value)


def _optional(obj: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        obj[key] = value


def attachment_to_obj(att: Attachment) -> dict[str, Any]:
    if not isinstance(att, Attachment):
        fail("attachments must be Attachment pointers")
    obj: dict[str, Any] = {
        "id": att.id,
        "key": _b64(att.key, "attachment key"),
        "digest": _b64(att.digest, "attachment digest"),
        "size": att.size,
        "type": att.content_type,
    }
    _optional(obj, "name", att.name)
    _optional(obj, "w", att.width)
    _optional(obj, "h", att.height)
    _optional(obj, "duration", att.duration_ms)
    if att.thumbnail is not None:
        obj["thumb"] = _b64(att.thumbnail, "attachment thumbnail")
    _optional(obj, "blurhash", att.blurhash)
    if att.voice is not False:
        obj["voice"] = att.voice
    attachment_from_obj(obj)  # one set of rules for both directions
    return obj


def _check_name(value: Any) -> str:
    if not isinstance(value, str):
        fail("attachment name must be a string")
    check_str(value, "attachment name")
    # A receiver may save the file under this name: no path separators, NUL, "." or "..".
    if value in ("", ".", "..") or any(c in value for c in "/\\\x00"):
        fail("attachment name must be a plain file name (no / \\ or NUL)")
    if len(value.encode("utf-8")) > MAX_NAME_BYTES:
        fail(f"attachment name exceeds {MAX_NAME_BYTES} bytes")
    return value


def _check_content_type(value: Any) -> str:
    if (
        not isinstance(value, str)
        or len(value) > MAX_CONTENT_TYPE_CHARS
        or not _CONTENT_TYPE.fullmatch(value)
    ):
        fail(f"attachment type must be type/subtype of at most {MAX_CONTENT_TYPE_CHARS} chars")
    return value


def _maybe_int(obj: dict[str, Any], key: str, what: str, low: int, high: int) -> int | None:
    value = obj.get(key)
    return None if value is None else check_int(value, what, low, high)


def attachment_from_obj(obj: Any) -> Attachment:
    if not isinstance(obj, dict):
        fail("an attachment must be an object")
    media_id = obj.get("id")
    if not isinstance(media_id, str) or not MEDIA_ID.fullmatch(media_id):
        fail("attachment id must be 22 base64url characters")
    key = validate_b64(obj.get("key"), "attachment key", size=KEY_BYTES, max_chars=88)
    digest = validate_b64(obj.get("digest"), "attachment digest", size=DIGEST_BYTES, max_chars=44)
    name = obj.get("name")
    thumb = obj.get("thumb")
    thumbnail = None
    if thumb is not None:
        thumbnail = validate_b64(thumb, "attachment thumbnail", size=None, max_chars=21848)
        if len(thumbnail) > MAX_THUMBNAIL_BYTES:
            fail(f"attachment thumbnail exceeds {MAX_THUMBNAIL_BYTES} bytes")
    blurhash = obj.get("blurhash")
    if blurhash is not None and (
        not isinstance(blurhash, str) or not _BLURHASH.fullmatch(blurhash)
    ):
        fail(f"attachment blurhash must be 6..{MAX_BLURHASH_CHARS} blurhash characters")
    voice = obj.get("voice", False)
    return Attachment(
        id=media_id,
        key=key,
        digest=digest,
        size=check_ts(obj.get("size"), "attachment size"),
        content_type=_check_content_type(obj.get("type")),
        name=None if name is None else _check_name(name),
        width=_maybe_int(obj, "w", "attachment width", 1, MAX_DIMENSION),
        height=_maybe_int(obj, "h", "attachment height", 1, MAX_DIMENSION),
        duration_ms=_maybe_int(obj, "duration", "attachment duration", 0, MAX_SAFE_INTEGER),
        thumbnail=thumbnail,
        blurhash=blurhash,
        voice=check_bool(voice, "attachment voice"),
    )


def quote_to_obj(quote: Quote) -> dict[str, Any]:
    if not isinstance(quote, Quote):
        fail("a reply must be a Quote")
    obj = {"id": quote.id, "author": quote.author, "body": quote.body}
    quote_from_obj(obj)
    return obj


def quote_from_obj(obj: Any) -> Quote:
    if not isinstance(obj, dict):
        fail("a reply quote must be an object")
    body = obj.get("body", "")
    if not isinstance(body, str) or len(body) > MAX_QUOTE_CHARS:
        fail(f"a reply quote's body must be a string of at most {MAX_QUOTE_CHARS} characters")
    return Quote(
        id=validate_id(obj.get("id"), "reply id"),
        author=validate_account(obj.get("author"), "reply author"),
        body=check_str(body, "reply body"),
    )


def text_extras_to_obj(extras: TextExtras) -> dict[str, Any]:
    """The wire fields for a text's extras; empty when every extra has its default."""
    obj: dict[str, Any] = {}
    raw: Any = extras.attachments
    if not isinstance(raw, tuple):
        fail("text attachments must be a tuple")
    if raw:
        obj["att"] = [attachment_to_obj(att) for att in raw]
    if extras.reply is not None:
        obj["reply"] = quote_to_obj(extras.reply)
    if extras.forwarded is not False:
        obj["fwd"] = extras.forwarded
    _optional(obj, "exp", extras.expires)
    text_extras_from_obj(obj)
    return obj


def text_extras_from_obj(obj: dict[str, Any]) -> TextExtras:
    att = obj.get("att")
    attachments: tuple[Attachment, ...] = ()
    if att is not None:
        if not isinstance(att, list) or not 1 <= len(att) <= MAX_ATTACHMENTS:
            fail(f"text attachments must be a list of 1..{MAX_ATTACHMENTS}")
        attachments = tuple(attachment_from_obj(item) for item in att)
    reply = obj.get("reply")
    expires = obj.get("exp")
    return TextExtras(
        attachments=attachments,
        reply=None if reply is None else quote_from_obj(reply),
        forwarded=check_bool(obj.get("fwd", False), "text fwd"),
        expires=None if expires is None else check_int(expires, "text exp", 1, MAX_TIMER_SECONDS),
    )


def _with_group(obj: dict[str, Any], group: str | None) -> dict[str, Any]:
    if group is not None:
        obj["group"] = group
    return obj


def rich_to_obj(content: RichKind) -> dict[str, Any]:
    """The wire object (without ``"v"``) of a reaction, edit, delete or timer."""
    obj: dict[str, Any]
    if isinstance(content, Reaction):
        obj = {"t": "reaction", "id": content.id, "author": content.author}
        obj |= {"emoji": content.emoji, "ts": content.ts}
        _with_group(obj, content.group)
    elif isinstance(content, Edit):
        obj = {"t": "edit", "id": content.id, "body": content.body, "ts": content.ts}
        _with_group(obj, content.group)
    elif isinstance(content, Delete):
        obj = _with_group({"t": "delete", "id": content.id, "ts": content.ts}, content.group)
    elif isinstance(content, Timer):
        obj = {"t": "timer", "seconds": content.seconds, "ts": content.ts}
    else:
        fail(f"cannot encode {type(content).__name__}")
    rich_from_obj(obj["t"], obj)
    return obj


def _group(obj: dict[str, Any]) -> str | None:
    group = obj.get("group")
    return None if group is None else validate_group_id(group)


def rich_from_obj(kind: str, obj: dict[str, Any]) -> RichKind:
    """Parse a reaction, edit, delete or timer object; ``kind`` is one of RICH_KINDS."""
    if kind == "timer":
        seconds = check_int(obj.get("seconds"), "timer seconds", 0, MAX_TIMER_SECONDS)
        return Timer(seconds=seconds, ts=check_ts(obj.get("ts"), "timer ts"))
    msg_id = validate_id(obj.get("id"), f"{kind} id")
    ts = check_ts(obj.get("ts"), f"{kind} ts")
    if kind == "reaction":
        emoji = obj.get("emoji")
        if not isinstance(emoji, str) or len(check_str(emoji, "emoji").encode()) > MAX_EMOJI_BYTES:
            fail(f"reaction emoji must be a string of at most {MAX_EMOJI_BYTES} bytes")
        author = validate_account(obj.get("author"), "reaction author")
        return Reaction(id=msg_id, author=author, emoji=emoji, ts=ts, group=_group(obj))
    if kind == "edit":
        body = validate_body(obj.get("body"), "edit body")
        return Edit(id=msg_id, body=body, ts=ts, group=_group(obj))
    if kind == "delete":
        return Delete(id=msg_id, ts=ts, group=_group(obj))
    fail(f"unknown rich content kind {kind!r}")
