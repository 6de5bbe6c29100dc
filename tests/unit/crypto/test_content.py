"""Message content encoding and padding (docs/protocol.md, "Message content")."""

from __future__ import annotations

import json

import pytest

from porch.crypto.content import (
    MAX_TEXT_BYTES,
    PAD_BLOCK,
    GroupKey,
    GroupStateKey,
    Receipt,
    Retry,
    Text,
    Typing,
    Unknown,
    content_to_json,
    decode_content,
    encode_content,
    pad,
    unpad,
)
from porch.crypto.errors import ContentError


@pytest.mark.parametrize(
    "content",
    [
        Text(id="m1", body="hello", ts=1_700_000_000_000),
        Text(id="m2", body="", ts=0),
        Text(id="m3", body='héllo 👋\n"quoted"\\ \x01', ts=2**53 - 1),
        Text(id="big", body="x" * MAX_TEXT_BYTES, ts=1),
        Receipt(kind="delivered", ids=("m1",)),
        Receipt(kind="read", ids=("m1", "m2", "m3")),
        Typing(state="started"),
        Typing(state="stopped"),
        Retry(ts=1_700_000_000_000, device=1),
        Retry(ts=0, device=2**31 - 1, id="m1"),
    ],
)
def test_round_trip(content: Text | Receipt | Typing | Retry) -> None:
    encoded = encode_content(content)
    assert len(encoded) % PAD_BLOCK == 0
    assert decode_content(encoded) == content


def test_json_is_compact_and_sorted() -> None:
    raw = content_to_json(Text(id="m1", body="é", ts=5))
    assert raw == '{"body":"é","id":"m1","t":"text","ts":5,"v":1}'.encode()
    assert content_to_json(Receipt(kind="read", ids=("a", "b"))) == (
        b'{"ids":["a","b"],"kind":"read","t":"receipt","v":1}'
    )
    assert content_to_json(Typing(state="started")) == b'{"state":"started","t":"typing","v":1}'


@pytest.mark.parametrize("length", [0, 1, 158, 159, 160, 161, 319, 320, 1000])
def test_pad_lengths(length: int) -> None:
    data = b"\x00" * length  # trailing zeros in the data itself must survive
    padded = pad(data)
    assert len(padded) % PAD_BLOCK == 0
    assert len(padded) > length
    assert len(padded) - length <= PAD_BLOCK
    assert unpad(padded) == data


def test_pad_data_ending_in_marker() -> None:
    assert unpad(pad(b"ab\x80")) == b"ab\x80"


@pytest.mark.parametrize("data", [b"", b"\x00" * 160, b"abc", b"abc\x00\x00", b"\x80\x01"])
def test_unpad_requires_marker(data: bytes) -> None:
    with pytest.raises(ContentError) as info:
        unpad(data)
    assert info.value.code == "bad_content"


def test_unpad_accepts_other_block_sizes() -> None:
    assert unpad(b"abc\x80") == b"abc"
    assert unpad(b"abc\x80" + bytes(500)) == b"abc"


def test_unknown_kind_is_surfaced() -> None:
    obj = {"v": 1, "t": "poll", "question": "tea?", "target": "m1"}
    decoded = decode_content(pad(json.dumps(obj).encode()))
    assert decoded == Unknown(t="poll", raw=obj)


def test_extra_fields_ignored() -> None:
    obj = {"v": 1, "t": "typing", "state": "started", "future": [1, 2]}
    assert decode_content(pad(json.dumps(obj).encode())) == Typing(state="started")


def test_non_canonical_json_accepted() -> None:
    raw = b'{ "v" : 1 , "t" : "typing" , "state" : "stopped" }'
    assert decode_content(pad(raw)) == Typing(state="stopped")


def _padded(obj: object) -> bytes:
    return pad(json.dumps(obj).encode())


@pytest.mark.parametrize(
    "data",
    [
        pad(b"not json"),
        pad(b"\xff\xfe{}"),  # bad UTF-8
        pad(b'{"v":1,"t":"text","id":"m","body":"\xed\xa0\x80","ts":1}'),  # UTF-8 surrogate
        pad(b'{"v":1,"t":"text","id":"m","body":"\\ud800","ts":1}'),  # lone surrogate escape
        pad(b'{"v":1,"t":"text","id":"m","body":"x","ts":NaN}'),
        b'{"v":1,"t":"typing","state":"started"}',  # no padding marker
        _padded([1, 2]),
        _padded("text"),
        _padded({"t": "text", "id": "m", "body": "x", "ts": 1}),  # no version
        _padded({"v": 2, "t": "text", "id": "m", "body": "x", "ts": 1}),
        _padded({"v": "1", "t": "typing", "state": "started"}),
        _padded({"v": 1.0, "t": "typing", "state": "started"}),
        _padded({"v": True, "t": "typing", "state": "started"}),
        _padded({"v": 1, "state": "started"}),  # no kind
        _padded({"v": 1, "t": 3}),
        _padded({"v": 1, "t": "text", "body": "x", "ts": 1}),
        _padded({"v": 1, "t": "text", "id": "", "body": "x", "ts": 1}),
        _padded({"v": 1, "t": "text", "id": 5, "body": "x", "ts": 1}),
        _padded({"v": 1, "t": "text", "id": "m", "ts": 1}),
        _padded({"v": 1, "t": "text", "id": "m", "body": None, "ts": 1}),
        _padded({"v": 1, "t": "text", "id": "m", "body": "x"}),
        _padded({"v": 1, "t": "text", "id": "m", "body": "x", "ts": "1"}),
        _padded({"v": 1, "t": "text", "id": "m", "body": "x", "ts": 1.5}),
        _padded({"v": 1, "t": "text", "id": "m", "body": "x", "ts": True}),
        _padded({"v": 1, "t": "text", "id": "m", "body": "x", "ts": -1}),
        _padded({"v": 1, "t": "text", "id": "m", "body": "x", "ts": 2**53}),
        _padded({"v": 1, "t": "text", "id": "m", "body": "x" * (MAX_TEXT_BYTES + 1), "ts": 1}),
        _padded({"v": 1, "t": "text", "id": "m", "body": "é" * (MAX_TEXT_BYTES // 2 + 1), "ts": 1}),
        _padded({"v": 1, "t": "receipt", "kind": "seen", "ids": ["m"]}),
        _padded({"v": 1, "t": "receipt", "kind": "read", "ids": []}),
        _padded({"v": 1, "t": "receipt", "kind": "read", "ids": "m"}),
        _padded({"v": 1, "t": "receipt", "kind": "read", "ids": ["m", 2]}),
        _padded({"v": 1, "t": "receipt", "kind": "read"}),
        _padded({"v": 1, "t": "typing", "state": "paused"}),
        _padded({"v": 1, "t": "typing"}),
        _padded({"v": 1, "t": "retry", "device": 1}),  # no ts
        _padded({"v": 1, "t": "retry", "ts": 1}),  # no device
        _padded({"v": 1, "t": "retry", "ts": -1, "device": 1}),
        _padded({"v": 1, "t": "retry", "ts": 2**53, "device": 1}),
        _padded({"v": 1, "t": "retry", "ts": True, "device": 1}),
        _padded({"v": 1, "t": "retry", "ts": 1, "device": 0}),
        _padded({"v": 1, "t": "retry", "ts": 1, "device": 2**31}),
        _padded({"v": 1, "t": "retry", "ts": 1, "device": "1"}),
        _padded({"v": 1, "t": "retry", "ts": 1, "device": 1, "id": ""}),
        _padded({"v": 1, "t": "retry", "ts": 1, "device": 1, "id": 7}),
    ],
)
def test_malformed_content_rejected(data: bytes) -> None:
    with pytest.raises(ContentError) as info:
        decode_content(data)
    assert info.value.code == "bad_content"


def test_deeply_nested_json_rejected() -> None:
    with pytest.raises(ContentError):
        decode_content(pad(b"[" * 100_000 + b"]" * 100_000))


@pytest.mark.parametrize(
    "content",
    [
        Text(id="m", body="x" * (MAX_TEXT_BYTES + 1), ts=1),
        Text(id="", body="x", ts=1),
        Text(id="m", body="\ud800", ts=1),
        Text(id="m", body="x", ts=-1),
        Receipt(kind="read", ids=()),
        Receipt(kind="seen", ids=("m",)),  # type: ignore[arg-type]
        Typing(state="paused"),  # type: ignore[arg-type]
        Retry(ts=1, device=0),
        Retry(ts=-1, device=1),
        Retry(ts=1, device=1, id=""),
    ],
)
def test_encode_rejects_invalid(content: Text | Receipt | Typing | Retry) -> None:
    with pytest.raises(ContentError):
        encode_content(content)


def test_encode_rejects_unknown() -> None:
    with pytest.raises(ContentError):
        encode_content(Unknown(t="x", raw={}))  # type: ignore[arg-type]


def test_retry_without_id_omits_it() -> None:
    assert content_to_json(Retry(ts=5, device=3)) == b'{"device":3,"t":"retry","ts":5,"v":1}'
    assert decode_content(_padded({"v": 1, "t": "retry", "ts": 5, "device": 3, "id": None})) == (
        Retry(ts=5, device=3)
    )


SESSION = "A" * 43  # 32 bytes of unpadded base64
SIG = "B" * 86  # 64 bytes
GOOD_GROUP_KEY = {"group": "g-1", "session": SESSION, "key": "QUJD", "sig": SIG}


def _raw(obj: dict[str, object]) -> bytes:
    return pad(json.dumps({"v": 1, **obj}).encode())


def test_group_key_contents_round_trip() -> None:
    key = GroupKey(**GOOD_GROUP_KEY)  # type: ignore[arg-type]
    state_key = GroupStateKey(group="g-1", epoch=2**32 - 1, key=SESSION)
    for content in (key, state_key):
        assert decode_content(encode_content(content)) == content


@pytest.mark.parametrize(
    "obj",
    [
        {"t": "group_key", **GOOD_GROUP_KEY, "group": ""},
        {"t": "group_key", **GOOD_GROUP_KEY, "group": "g" * 129},
        {"t": "group_key", **GOOD_GROUP_KEY, "group": "a\u0000b"},
        {"t": "group_key", **GOOD_GROUP_KEY, "session": "A" * 42},
        {"t": "group_key", **GOOD_GROUP_KEY, "session": "!" * 43},
        {"t": "group_key", **GOOD_GROUP_KEY, "key": "Q" * 513},
        {"t": "group_key", **GOOD_GROUP_KEY, "sig": SESSION},
        {"t": "group_key", "group": "g-1", "session": SESSION, "key": "QUJD"},
        {"t": "group_state_key", "group": "g-1", "epoch": -1, "key": SESSION},
        {"t": "group_state_key", "group": "g-1", "epoch": 2**32, "key": SESSION},
        {"t": "group_state_key", "group": "g-1", "epoch": True, "key": SESSION},
        {"t": "group_state_key", "group": "g-1", "epoch": 0, "key": "QUJD"},
    ],
)
def test_malformed_group_keys_rejected(obj: dict[str, object]) -> None:
    with pytest.raises(ContentError):
        decode_content(_raw(obj))


# group_update and group texts (issue 7 spec E) ------------------------------------------------

_A = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
_B = "b7f3c2a0-0000-4000-8000-00000000beef"


def test_group_update_round_trips_every_action() -> None:
    from typing import get_args

    from porch.crypto.content import GROUP_ACTIONS, GroupAction, GroupUpdate

    assert set(get_args(GroupAction)) == set(GROUP_ACTIONS)
    for action in GROUP_ACTIONS:
        update = GroupUpdate("g", 7, action, (_A, _B))  # type: ignore[arg-type]
        assert decode_content(encode_content(update)) == update


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "kick"},
        {"revision": -1},
        {"revision": 2**53},
        {"revision": True},
        {"group": ""},
        {"targets": "nobody"},
        {"targets": ["not-an-account"]},
        {"targets": [_A, _A]},
        {"targets": [_A] * 1001},
        {"targets": None},
    ],
)
def test_group_update_out_of_bounds_is_refused(fields: dict[str, object]) -> None:
    import json

    from porch.crypto.content import GroupUpdate, pad

    obj = {"v": 1, "t": "group_update", "group": "g", "revision": 1, "action": "add"}
    obj["targets"] = [_A]
    obj.update(fields)
    with pytest.raises(ContentError):
        decode_content(pad(json.dumps(obj).encode()))
    targets = obj["targets"]
    update = GroupUpdate(
        obj["group"],  # type: ignore[arg-type]
        obj["revision"],  # type: ignore[arg-type]
        obj["action"],  # type: ignore[arg-type]
        tuple(targets) if isinstance(targets, list) else targets,  # type: ignore[arg-type]
    )
    with pytest.raises(ContentError):
        encode_content(update)


def test_a_1000_target_update_is_accepted() -> None:
    import uuid

    from porch.crypto.content import GroupUpdate

    update = GroupUpdate("g", 1, "add", tuple(str(uuid.uuid4()) for _ in range(1000)))
    assert decode_content(encode_content(update)) == update


def test_a_text_may_name_its_group() -> None:
    text = Text("m1", "hi", 1, group="g-1")
    assert b'"group":"g-1"' in encode_content(text)
    assert decode_content(encode_content(text)) == text
    assert b"group" not in encode_content(Text("m1", "hi", 1))
    with pytest.raises(ContentError):
        encode_content(Text("m1", "hi", 1, group=""))
