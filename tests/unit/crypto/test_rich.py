"""Rich contents: attachment pointers, replies, reactions, edits, deletes and timers
(docs/protocol.md, "Content object"; issue 8 spec §3)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from porch.crypto import Attachment, Delete, Edit, Quote, Reaction, Timer
from porch.crypto.content import (
    MAX_TEXT_BYTES,
    Receipt,
    Sent,
    Text,
    Unknown,
    content_to_json,
    decode_content,
    encode_content,
    pad,
)
from porch.crypto.errors import ContentError
from porch.crypto.rich import MAX_ATTACHMENTS, MAX_THUMBNAIL_BYTES, MAX_TIMER_SECONDS
from porch.protocol.codec import b64encode

A = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
B = "b7f3c2a0-0000-4000-8000-00000000beef"
MEDIA = "AAECAwQFBgcICQoLDA0ODw"
POINTER = Attachment(id=MEDIA, key=bytes(64), digest=bytes(32), size=10, content_type="image/png")
LONG = "x" * 201
_T: dict[str, Any] = {"t": "text", "id": "m", "body": "", "ts": 1}
GOOD_ATT: dict[str, Any] = {
    "id": MEDIA,
    "key": b64encode(bytes(64)),
    "digest": b64encode(bytes(32)),
    "size": 10,
    "type": "image/png",
}


def _decode(obj: dict[str, Any]) -> object:
    return decode_content(pad(json.dumps({"v": 1, **obj}).encode()))


def _text_with(**att: Any) -> dict[str, Any]:
    return {"t": "text", "id": "m1", "body": "", "ts": 1, "att": [{**GOOD_ATT, **att}]}


FULL = Attachment(
    id="_-_-_-_-_-_-_-_-_-_-_w",
    key=bytes(range(64)),
    digest=bytes(range(32)),
    size=2**53 - 1,
    content_type="video/mp4",
    name="clip.mp4",
    width=65535,
    height=1,
    duration_ms=0,
    thumbnail=b"\xff" * MAX_THUMBNAIL_BYTES,
    blurhash="L" * 100,
    voice=True,
)


@pytest.mark.parametrize(
    "content",
    [
        Text("m1", "", 1, attachments=(POINTER,)),
        Text("m1", "caption", 1, attachments=(FULL,) * MAX_ATTACHMENTS),
        Text("m2", "re", 2, reply=Quote("m1", A, "x" * 200)),
        Text("m2", "re", 2, reply=Quote("m1", A)),
        Text("m3", "fw", 3, group="g-1", forwarded=True, attachments=(POINTER,)),
        Text("m4", "bye", 4, expires=1),
        Text("m4", "bye", 4, expires=MAX_TIMER_SECONDS),
        Reaction("m1", A, "👍", 5),
        Reaction("m1", A, "", 5),
        Reaction("m1", A, "x" * 32, 5, group="g-1"),
        Edit("m1", "x" * MAX_TEXT_BYTES, 6),
        Edit("m1", "", 6, group="g-1"),
        Delete("m1", 2**53 - 1),
        Delete("m1", 0, group="g-1"),
        Timer(0, 7),
        Timer(MAX_TIMER_SECONDS, 7),
        Sent(B, Reaction("m1", B, "🎉", 8)),
        Sent(B, Edit("m1", "fixed", 9)),
        Sent(B, Delete("m1", 10)),
        Sent(B, Timer(60, 11)),
        Sent(B, Text("m5", "", 12, attachments=(POINTER,), expires=60)),
    ],
)
def test_round_trip(content: Any) -> None:
    assert decode_content(encode_content(content)) == content


def test_a_plain_text_is_byte_identical_to_before() -> None:
    plain = b'{"body":"hi","id":"m1","t":"text","ts":5,"v":1}'
    assert content_to_json(Text("m1", "hi", 5)) == plain


def test_defaults_are_omitted_and_extras_use_the_short_wire_names() -> None:
    raw = json.loads(content_to_json(Text("m1", "", 1, attachments=(POINTER,))))
    assert raw["att"] == [GOOD_ATT]
    full = json.loads(content_to_json(Text("m1", "", 1, attachments=(FULL,), forwarded=True)))
    assert set(full["att"][0]) == {
        "id",
        "key",
        "digest",
        "size",
        "type",
        "name",
        "w",
        "h",
        "duration",
        "thumb",
        "blurhash",
        "voice",
    }
    assert full["fwd"] is True
    assert "reply" not in full and "exp" not in full


def test_unknown_fields_are_ignored_everywhere() -> None:
    obj = _text_with(future=1)
    obj["reply"] = {"id": "m0", "author": A, "body": "q", "extra": [1]}
    obj["later"] = {"x": 1}
    text = _decode(obj)
    assert isinstance(text, Text)
    assert text.attachments == (POINTER,)
    assert text.reply == Quote("m0", A, "q")
    assert _decode({"t": "timer", "seconds": 5, "ts": 1, "who": "x"}) == Timer(5, 1)


def test_a_quote_without_body_and_explicit_false_flags_decode() -> None:
    obj = {"t": "text", "id": "m", "body": "b", "ts": 1, "fwd": False}
    obj["reply"] = {"id": "m0", "author": A}
    text = _decode(obj)
    assert text == Text("m", "b", 1, reply=Quote("m0", A, ""))
    assert _decode(_text_with(voice=False)) == Text("m1", "", 1, attachments=(POINTER,))


def test_unknown_kinds_still_surface_as_unknown() -> None:
    assert _decode({"t": "poll", "q": "?"}) == Unknown("poll", {"v": 1, "t": "poll", "q": "?"})


@pytest.mark.parametrize(
    "obj",
    [
        # attachments
        _T | {"att": []},
        _T | {"att": [GOOD_ATT] * 11},
        _T | {"att": GOOD_ATT},
        _T | {"att": ["x"]},
        _text_with(id=MEDIA + "A"),  # 23 characters
        _text_with(id=MEDIA[:-1]),
        _text_with(id=MEDIA[:-1] + "="),
        _text_with(id=None),
        _text_with(key=b64encode(bytes(63))),
        _text_with(key=b64encode(bytes(65))),
        _text_with(key="not base64!"),
        _text_with(key=None),
        _text_with(digest=b64encode(bytes(31))),
        _text_with(size=-1),
        _text_with(size=2**53),
        _text_with(size=2**63),
        _text_with(size=True),
        _text_with(size=1.0),
        _text_with(size="10"),
        _text_with(type="image"),
        _text_with(type="image/png; charset=x"),
        _text_with(type="a/" + "b" * 127),
        _text_with(type=None),
        _text_with(name="a/b"),
        _text_with(name="a\\b"),
        _text_with(name="a\x00b"),
        _text_with(name=""),
        _text_with(name=".."),
        _text_with(name="é" * 128),  # 256 UTF-8 bytes
        _text_with(name=7),
        _text_with(w=0),
        _text_with(w=65536),
        _text_with(h=True),
        _text_with(duration=-1),
        _text_with(duration=2**53),
        _text_with(thumb=b64encode(bytes(MAX_THUMBNAIL_BYTES + 1))),
        _text_with(thumb=""),
        _text_with(blurhash="L" * 101),
        _text_with(blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj\n"),
        _text_with(blurhash="short"),
        _text_with(voice=1),
        _text_with(voice="true"),
        # reply, fwd, exp
        _T | {"reply": "m0"},
        _T | {"reply": {"id": "m0", "author": "bob"}},
        _T | {"reply": {"id": "", "author": A}},
        _T | {"reply": {"id": "m0", "author": A, "body": LONG}},
        _T | {"fwd": 1},
        _T | {"exp": 0},
        _T | {"exp": MAX_TIMER_SECONDS + 1},
        _T | {"exp": True},
        _T | {"exp": 2**63},
        # reaction
        {"t": "reaction", "id": "m", "author": A, "emoji": "x" * 33, "ts": 1},
        {"t": "reaction", "id": "m", "author": A, "emoji": "😀" * 8 + "x", "ts": 1},  # 33 bytes
        {"t": "reaction", "id": "m", "author": A, "ts": 1},
        {"t": "reaction", "id": "m", "author": "alice", "emoji": "👍", "ts": 1},
        {"t": "reaction", "id": "", "author": A, "emoji": "👍", "ts": 1},
        {"t": "reaction", "id": "m", "author": A, "emoji": "👍", "ts": 2**53},
        {"t": "reaction", "id": "m", "author": A, "emoji": "👍", "ts": 1, "group": ""},
        # edit
        {"t": "edit", "id": "m", "body": "x" * (MAX_TEXT_BYTES + 1), "ts": 1},
        {"t": "edit", "id": "m", "body": None, "ts": 1},
        {"t": "edit", "id": "m", "body": "x", "ts": True},
        {"t": "edit", "body": "x", "ts": 1},
        # delete
        {"t": "delete", "id": "m"},
        {"t": "delete", "id": 5, "ts": 1},
        {"t": "delete", "id": "m", "ts": -1},
        {"t": "delete", "id": "m", "ts": 1, "group": "g" * 129},
        # timer
        {"t": "timer", "seconds": -1, "ts": 1},
        {"t": "timer", "seconds": MAX_TIMER_SECONDS + 1, "ts": 1},
        {"t": "timer", "seconds": False, "ts": 1},
        {"t": "timer", "seconds": 60},
        # a sent copy never holds a typing notice or another copy
        {"t": "sent", "to": B, "c": {"v": 1, "t": "typing", "state": "started"}},
        {"t": "sent", "to": B, "c": {"v": 1, "t": "sent", "to": B, "c": {}}},
    ],
)
def test_malformed_rich_content_is_refused(obj: dict[str, Any]) -> None:
    with pytest.raises(ContentError) as info:
        _decode(obj)
    assert info.value.code == "bad_content"


def test_a_body_over_64_kib_is_refused_next_to_attachments() -> None:
    obj = _text_with()
    obj["body"] = "x" * (MAX_TEXT_BYTES + 1)
    with pytest.raises(ContentError):
        _decode(obj)


@pytest.mark.parametrize(
    "change",
    [
        {"id": "x" * 23},
        {"key": bytes(63)},
        {"key": "00" * 64},
        {"digest": bytes(33)},
        {"size": 2**53},
        {"size": True},
        {"content_type": "nope"},
        {"name": "../etc/passwd"},
        {"width": 0},
        {"height": 65536},
        {"duration_ms": -5},
        {"thumbnail": bytes(MAX_THUMBNAIL_BYTES + 1)},
        {"thumbnail": b""},
        {"blurhash": "no spaces allowed"},
        {"voice": 1},
    ],
)
def test_encoding_an_invalid_pointer_is_refused(change: dict[str, Any]) -> None:
    bad = dataclasses.replace(POINTER, **change)
    with pytest.raises(ContentError):
        encode_content(Text("m", "", 1, attachments=(bad,)))


@pytest.mark.parametrize(
    "content",
    [
        Text("m", "", 1, attachments=(POINTER,) * 11),
        Text("m", "", 1, attachments=[POINTER]),  # type: ignore[arg-type]
        Text("m", "", 1, attachments=("pointer",)),  # type: ignore[arg-type]
        Text("m", "", 1, reply=Quote("m0", "nobody")),
        Text("m", "", 1, reply=Quote("m0", A, "x" * 201)),
        Text("m", "", 1, reply="m0"),  # type: ignore[arg-type]
        Text("m", "", 1, forwarded=1),  # type: ignore[arg-type]
        Text("m", "", 1, expires=0),
        Reaction("m", A, "x" * 33, 1),
        Reaction("m", A, "👍", -1),
        Edit("m", "x" * (MAX_TEXT_BYTES + 1), 1),
        Delete("", 1),
        Timer(MAX_TIMER_SECONDS + 1, 1),
        Sent(B, Sent(B, Timer(1, 1))),  # type: ignore[arg-type]
    ],
)
def test_encoding_invalid_rich_content_is_refused(content: Any) -> None:
    with pytest.raises(ContentError):
        encode_content(content)


def test_sent_copies_still_hold_texts_and_receipts() -> None:
    copy = Sent(B, Receipt("read", ("m1",)))
    assert decode_content(encode_content(copy)) == copy
