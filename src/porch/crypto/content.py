"""The plaintext carried inside every Olm message (docs/protocol.md, "Message content").

A content is a JSON object (UTF-8, compact separators, keys sorted) with ``"v": 1`` and a kind
``"t"``, padded before encryption so the ciphertext length reveals only a 160-byte bucket.
Receivers ignore unknown fields and surface unknown kinds as :class:`Unknown`, so later kinds
(reactions, edits, attachments) reach old clients as something they can skip, not an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from porch.crypto.errors import ContentError

VERSION = 1
PAD_BLOCK = 160
MAX_TEXT_BYTES = 64 * 1024
# Timestamps must survive a round trip through a JavaScript number in the browser client.
MAX_SAFE_INTEGER = 2**53 - 1

MAX_DEVICE_ID = 2**31 - 1  # the wire's device id range (docs/protocol.md, "Frames")

_RECEIPT_KINDS = ("delivered", "read")
_TYPING_STATES = ("started", "stopped")


@dataclass(frozen=True)
class Text:
    id: str
    body: str
    ts: int


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
class Unknown:
    """A well-formed v1 content of a kind this client does not know; ``raw`` is the object."""

    t: str
    raw: dict[str, Any]


Content = Text | Receipt | Typing | Retry | Unknown
Encodable = Text | Receipt | Typing | Retry


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


def _check_str(value: str, what: str) -> str:
    # Lone surrogates cannot be encoded as UTF-8, so such a string could never be sent on.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ContentError(f"{what} is not valid Unicode") from None
    return value


def _to_json(obj: dict[str, Any]) -> bytes:
    # ensure_ascii=False keeps non-ASCII text as raw UTF-8, which is what JavaScript's
    # JSON.stringify produces too, so both implementations emit identical bytes.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode(
        "utf-8"
    )


def content_to_json(content: Encodable) -> bytes:
    """The exact JSON bytes (before padding) for a content; ContentError if it is invalid."""
    obj: dict[str, Any]
    if isinstance(content, Text):
        _validate_text(content.id, content.body, content.ts)
        obj = {"v": VERSION, "t": "text", "id": content.id, "body": content.body, "ts": content.ts}
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
    else:
        raise ContentError(f"cannot encode {type(content).__name__}")
    return _to_json(obj)


def encode_content(content: Encodable) -> bytes:
    """Serialise and pad a content, ready to hand to Olm."""
    return pad(content_to_json(content))


def _fail(message: str) -> NoReturn:
    raise ContentError(message)


def _reject_constant(name: str) -> NoReturn:
    _fail(f"non-standard JSON constant {name}")


def _validate_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        _fail(f"{what} must be a non-empty string")
    return _check_str(value, what)


def _validate_text(msg_id: Any, body: Any, ts: Any) -> None:
    _validate_id(msg_id, "text id")
    if not isinstance(body, str):
        _fail("text body must be a string")
    _check_str(body, "text body")
    if len(body.encode("utf-8")) > MAX_TEXT_BYTES:
        _fail(f"text body exceeds {MAX_TEXT_BYTES} bytes")
    # bool is a subclass of int in Python but not a number in JSON's sense.
    if isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts <= MAX_SAFE_INTEGER:
        _fail("text ts must be an integer in 0..2**53-1")


def _validate_receipt(kind: Any, ids: Any) -> None:
    if kind not in _RECEIPT_KINDS:
        _fail(f"receipt kind must be one of {_RECEIPT_KINDS}")
    if not isinstance(ids, list) or not ids:
        _fail("receipt ids must be a non-empty list")
    for item in ids:
        _validate_id(item, "receipt id")


def _validate_retry(ts: Any, device: Any, msg_id: Any) -> None:
    if isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts <= MAX_SAFE_INTEGER:
        _fail("retry ts must be an integer in 0..2**53-1")
    if isinstance(device, bool) or not isinstance(device, int) or not 1 <= device <= MAX_DEVICE_ID:
        _fail("retry device must be an integer in 1..2**31-1")
    if msg_id is not None:
        _validate_id(msg_id, "retry id")


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
    if not isinstance(obj, dict):
        _fail("content must be a JSON object")
    version = obj.get("v")
    # Exact int check: JSON 1.0 or true compare equal to 1 in Python but are not version 1.
    if type(version) is not int or version != VERSION:
        _fail(f"unsupported content version {version!r}")
    kind = obj.get("t")
    if not isinstance(kind, str):
        _fail("content kind 't' must be a string")
    if kind == "text":
        _validate_text(obj.get("id"), obj.get("body"), obj.get("ts"))
        return Text(id=obj["id"], body=obj["body"], ts=obj["ts"])
    if kind == "receipt":
        _validate_receipt(obj.get("kind"), obj.get("ids"))
        return Receipt(kind=obj["kind"], ids=tuple(obj["ids"]))
    if kind == "typing":
        state = obj.get("state")
        if state not in _TYPING_STATES:
            _fail(f"typing state must be one of {_TYPING_STATES}")
        return Typing(state=state)
    if kind == "retry":
        _validate_retry(obj.get("ts"), obj.get("device"), obj.get("id"))
        return Retry(ts=obj["ts"], device=obj["device"], id=obj.get("id"))
    return Unknown(t=_check_str(kind, "content kind"), raw=obj)
