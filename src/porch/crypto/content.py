"""The plaintext carried inside every Olm message (docs/protocol.md, "Message content").

A content is a JSON object (UTF-8, compact separators, keys sorted) with ``"v": 1`` and a kind
``"t"``, padded before encryption so the ciphertext length reveals only a 160-byte bucket.
Receivers ignore unknown fields and surface unknown kinds as :class:`Unknown`, so later kinds
reach old clients as something they can skip, not an error. The issue 8 kinds (attachments,
replies, reactions, edits, deletes, timers) live in :mod:`porch.crypto.rich`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

# Re-exported (``X as X``): callers import these bounds and kinds from this module.
from porch.crypto.content_checks import GROUP_ACTIONS as GROUP_ACTIONS
from porch.crypto.content_checks import MAX_GROUP_ID_BYTES as MAX_GROUP_ID_BYTES
from porch.crypto.content_checks import MAX_SAFE_INTEGER as MAX_SAFE_INTEGER
from porch.crypto.content_checks import MAX_TEXT_BYTES as MAX_TEXT_BYTES
from porch.crypto.content_checks import (
    check_int,
    check_str,
    check_ts,
    fail,
    validate_account,
    validate_body,
    validate_group_id,
    validate_group_key,
    validate_group_state_key,
    validate_group_update,
    validate_id,
)
from porch.crypto.errors import ContentError
from porch.crypto.rich import (
    RICH_KINDS,
    RichKind,
    TextExtras,
    rich_from_obj,
    rich_to_obj,
    text_extras_from_obj,
    text_extras_to_obj,
)
from porch.crypto.rich import Attachment as Attachment
from porch.crypto.rich import Delete as Delete
from porch.crypto.rich import Edit as Edit
from porch.crypto.rich import Quote as Quote
from porch.crypto.rich import Reaction as Reaction
from porch.crypto.rich import Timer as Timer

VERSION = 1
PAD_BLOCK = 160

MAX_DEVICE_ID = 2**31 - 1  # the wire's device id range (docs/protocol.md, "Frames")


_RECEIPT_KINDS = ("delivered", "read")
_TYPING_STATES = ("started", "stopped")


@dataclass(frozen=True)
class Text:
    id: str
    body: str
    ts: int
    # The group a text belongs to when it travels inside Megolm (spec E); the receiver checks
    # that the session it came in belongs to that group. Absent in 1:1 texts.
    group: str | None = None
    # Issue 8 (crypto/rich.py): wire "att", "reply", "fwd", "exp"; omitted when default, so a
    # plain text encodes byte for byte as before.
    attachments: tuple[Attachment, ...] = ()
    reply: Quote | None = None
    forwarded: bool = False
    expires: int | None = None  # seconds: a disappearing message expires at ts + exp * 1000


@dataclass(frozen=True)
class Receipt:
    kind: Literal["delivered", "read"]
    ids: tuple[str, ...]


@dataclass(frozen=True)
class Typing:
    state: Literal["started", "stopped"]


@dataclass(frozen=True)
class Retry:
    """A retry request (Signal's DecryptionErrorMessage): "resend the message you sent me".

    The receiver could not decrypt the message, so it names it by what the envelope showed:
    the server timestamp ``ts`` (which the sender's ``sent`` acknowledgement also carried) and
    the sending ``device``; ``id`` is the client message id when the receiver knows it.
    """

    ts: int
    device: int
    id: str | None = None


@dataclass(frozen=True)
class GroupKey:
    """A Megolm session shared with one member device over Olm (Matrix's ``m.room_key``).

    ``session`` is the session id (its Ed25519 key, base64), ``key`` the signed session key at
    the index from which the recipient may read, and ``sig`` the sending device's Ed25519
    signature over ``porch.crypto.megolm.group_key_payload(group, session)``.
    """

    group: str
    session: str
    key: str
    sig: str


@dataclass(frozen=True)
class GroupStateKey:
    """The 32-byte key (base64) that seals a group's state from key ``epoch`` on."""

    group: str
    epoch: int
    key: str


GroupAction = Literal[
    "create", "add", "remove", "leave", "promote", "demote", "join", "state", "settings"
]


@dataclass(frozen=True)
class GroupUpdate:
    """A change to a group, told by the device that made it ("Alice added Bob"), so members
    see who did what; the server's ``group_changed`` hint says only that something changed."""

    group: str
    revision: int
    action: GroupAction
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sent:
    """A copy, for the sender's own other devices, of a content it sent ``to`` an account
    (spec D): a text shows there as outgoing, a read receipt marks those messages read (read
    state sync), a reaction, edit, delete or timer applies there too (issue 8). A copy never
    holds another copy."""

    to: str
    content: Text | Receipt | RichKind


@dataclass(frozen=True)
class Unknown:
    """A well-formed v1 content of a kind this client does not know; ``raw`` is the object."""

    t: str
    raw: dict[str, Any]


Encodable = (
    Text | Receipt | Typing | Retry | GroupKey | GroupStateKey | GroupUpdate | Sent | RichKind
)
Content = Encodable | Unknown
_SENT_KINDS = (Text, Receipt, Reaction, Edit, Delete, Timer)


def pad(data: bytes) -> bytes:
    """ISO/IEC 7816-4 padding to a multiple of PAD_BLOCK, as Signal pads message bodies.

    A 0x80 marker is always appended (so unpadding is unambiguous even when the data ends in
    zero bytes), then zeros up to the next multiple of the block size.
    """
    marked = data + b"\x80"
    return marked + b"\x00" * (-len(marked) % PAD_BLOCK)


def unpad(data: bytes) -> bytes:
    """Inverse of :func:`pad`: strip trailing zeros and the 0x80 marker, ContentError if absent.

    The padded length is deliberately not required to be a multiple of PAD_BLOCK, so a future
    sender may choose another bucket size without breaking older receivers.
    """
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise ContentError("missing padding marker")
    return stripped[:-1]


def _to_json(obj: dict[str, Any]) -> bytes:
    # ensure_ascii=False keeps non-ASCII text as raw UTF-8, which is what JavaScript's
    # JSON.stringify produces too, so both implementations emit identical bytes.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode(
        "utf-8"
    )


def content_to_json(content: Encodable) -> bytes:
    """The exact JSON bytes (before padding) for a content; ContentError if it is invalid."""
    return _to_json(_to_obj(content))


def _to_obj(content: Encodable) -> dict[str, Any]:
    obj: dict[str, Any]
    if isinstance(content, Sent):
        _validate_sent_to(content.to)
        if not isinstance(content.content, _SENT_KINDS):
            raise ContentError("a sent copy holds a text, receipt, reaction, edit, delete or timer")
        obj = {"v": VERSION, "t": "sent", "to": content.to, "c": _to_obj(content.content)}
    elif isinstance(content, Text):
        _validate_text(content.id, content.body, content.ts)
        obj = {"v": VERSION, "t": "text", "id": content.id, "body": content.body, "ts": content.ts}
        if content.group is not None:
            obj["group"] = validate_group_id(content.group)
        extras = TextExtras(content.attachments, content.reply, content.forwarded, content.expires)
        obj |= text_extras_to_obj(extras)
    elif isinstance(content, Reaction | Edit | Delete | Timer):
        obj = {"v": VERSION, **rich_to_obj(content)}
    elif isinstance(content, Receipt):
        _validate_receipt(content.kind, list(content.ids))
        obj = {"v": VERSION, "t": "receipt", "kind": content.kind, "ids": list(content.ids)}
    elif isinstance(content, Typing):
        if content.state not in _TYPING_STATES:
            raise ContentError(f"typing state must be one of {_TYPING_STATES}")
        obj = {"v": VERSION, "t": "typing", "state": content.state}
    elif isinstance(content, Retry):
        _validate_retry(content.ts, content.device, content.id)
        obj = {"v": VERSION, "t": "retry", "ts": content.ts, "device": content.device}
        if content.id is not None:
            obj["id"] = content.id
    elif isinstance(content, GroupKey):
        validate_group_key(content.group, content.session, content.key, content.sig)
        obj = {
            "v": VERSION,
            "t": "group_key",
            "group": content.group,
            "session": content.session,
            "key": content.key,
            "sig": content.sig,
        }
    elif isinstance(content, GroupStateKey):
        validate_group_state_key(content.group, content.epoch, content.key)
        obj = {
            "v": VERSION,
            "t": "group_state_key",
            "group": content.group,
            "epoch": content.epoch,
            "key": content.key,
        }
    elif isinstance(content, GroupUpdate):
        raw_targets: Any = content.targets
        targets = list(raw_targets) if isinstance(raw_targets, (list, tuple)) else raw_targets
        validate_group_update(content.group, content.revision, content.action, targets)
        obj = {
            "v": VERSION,
            "t": "group_update",
            "group": content.group,
            "revision": content.revision,
            "action": content.action,
            "targets": targets,
        }
    else:
        raise ContentError(f"cannot encode {type(content).__name__}")
    return obj


def encode_content(content: Encodable) -> bytes:
    """Serialise and pad a content, ready to hand to Olm."""
    return pad(content_to_json(content))


def _reject_constant(name: str) -> NoReturn:
    fail(f"non-standard JSON constant {name}")


def _validate_text(msg_id: Any, body: Any, ts: Any) -> None:
    validate_id(msg_id, "text id")
    validate_body(body, "text body")
    check_ts(ts, "text ts")


def _validate_receipt(kind: Any, ids: Any) -> None:
    if kind not in _RECEIPT_KINDS:
        fail(f"receipt kind must be one of {_RECEIPT_KINDS}")
    if not isinstance(ids, list) or not ids:
        fail("receipt ids must be a non-empty list")
    for item in ids:
        validate_id(item, "receipt id")


def _validate_retry(ts: Any, device: Any, msg_id: Any) -> None:
    check_ts(ts, "retry ts")
    check_int(device, "retry device", 1, MAX_DEVICE_ID, bound="2**31-1")
    if msg_id is not None:
        validate_id(msg_id, "retry id")


def _validate_sent_to(value: Any) -> None:
    validate_account(value, "sent 'to'")


def decode_content(data: bytes) -> Content:
    """Unpad and parse a decrypted content; ContentError on anything malformed."""
    raw = unpad(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ContentError("content is not valid UTF-8") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, RecursionError):
        raise ContentError("content is not valid JSON") from None
    return _from_obj(obj, nested=False)


def _from_obj(obj: Any, nested: bool) -> Content:
    if not isinstance(obj, dict):
        fail("content must be a JSON object")
    version = obj.get("v")
    # Exact int check: JSON 1.0 or true compare equal to 1 in Python but are not version 1.
    if type(version) is not int or version != VERSION:
        fail(f"unsupported content version {version!r}")
    kind = obj.get("t")
    if not isinstance(kind, str):
        fail("content kind 't' must be a string")
    if kind == "sent":
        if nested:
            fail("a sent copy cannot hold another")
        _validate_sent_to(obj.get("to"))
        inner = _from_obj(obj.get("c"), nested=True)
        if not isinstance(inner, _SENT_KINDS):
            fail("a sent copy holds a text, receipt, reaction, edit, delete or timer")
        return Sent(to=obj["to"], content=inner)
    if kind == "text":
        _validate_text(obj.get("id"), obj.get("body"), obj.get("ts"))
        group = obj.get("group")
        if group is not None:
            validate_group_id(group)
        extras = text_extras_from_obj(obj)
        return Text(
            id=obj["id"],
            body=obj["body"],
            ts=obj["ts"],
            group=group,
            attachments=extras.attachments,
            reply=extras.reply,
            forwarded=extras.forwarded,
            expires=extras.expires,
        )
    if kind in RICH_KINDS:
        return rich_from_obj(kind, obj)
    if kind == "receipt":
        _validate_receipt(obj.get("kind"), obj.get("ids"))
        return Receipt(kind=obj["kind"], ids=tuple(obj["ids"]))
    if kind == "typing":
        state = obj.get("state")
        if state not in _TYPING_STATES:
            fail(f"typing state must be one of {_TYPING_STATES}")
        return Typing(state=state)
    if kind == "retry":
        _validate_retry(obj.get("ts"), obj.get("device"), obj.get("id"))
        return Retry(ts=obj["ts"], device=obj["device"], id=obj.get("id"))
    if kind == "group_key":
        validate_group_key(obj.get("group"), obj.get("session"), obj.get("key"), obj.get("sig"))
        return GroupKey(group=obj["group"], session=obj["session"], key=obj["key"], sig=obj["sig"])
    if kind == "group_state_key":
        validate_group_state_key(obj.get("group"), obj.get("epoch"), obj.get("key"))
        return GroupStateKey(group=obj["group"], epoch=obj["epoch"], key=obj["key"])
    if kind == "group_update":
        update = (obj.get("group"), obj.get("revision"), obj.get("action"), obj.get("targets"))
        validate_group_update(*update)
        return GroupUpdate(
            group=obj["group"],
            revision=obj["revision"],
            action=obj["action"],
            targets=tuple(obj["targets"]),
        )
    return Unknown(t=check_str(kind, "content kind"), raw=obj)
