"""Wire encodings: unpadded standard base64 and JSON."""

from __future__ import annotations

import base64
import os

import pytest

from porch.protocol.codec import b64decode, b64encode, dumps, loads
from porch.protocol.errors import ErrorCode, ProtocolError


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 31, 32, 33, 64, 1000])
def test_b64_round_trip(size: int) -> None:
    data = os.urandom(size)
    text = b64encode(data)
    assert "=" not in text
    assert b64decode(text) == data


def test_b64_all_byte_values() -> None:
    data = bytes(range(256))
    assert b64decode(b64encode(data)) == data


def test_b64_uses_standard_alphabet() -> None:
    text = b64encode(b"\xfb\xff\xbf")
    assert text == "+/+/"
    assert b64decode(text) == b"\xfb\xff\xbf"


def test_b64_known_vectors() -> None:
    # RFC 4648 section 10, padding stripped.
    vectors = {b"": "", b"f": "Zg", b"fo": "Zm8", b"foo": "Zm9v", b"foobar": "Zm9vYmFy"}
    for raw, text in vectors.items():
        assert b64encode(raw) == text
        assert b64decode(text) == raw


@pytest.mark.parametrize("size", [1, 2, 3, 10, 32])
def test_b64_decode_accepts_padded(size: int) -> None:
    data = os.urandom(size)
    assert b64decode(base64.b64encode(data).decode()) == data


@pytest.mark.parametrize("text", ["a", "abcde", "Zm9vY", "a==="])
def test_b64_rejects_bad_length(text: str) -> None:
    with pytest.raises(ValueError, match="length"):
        b64decode(text)


@pytest.mark.parametrize(
    "text",
    [
        "Zm9v!",  # not in the alphabet
        "Zm 9v",  # whitespace
        "Zm9v\n",
        "Zm-_",  # url-safe alphabet is not the wire alphabet
        "Zm=9v",  # padding in the middle
    ],
)
def test_b64_rejects_invalid_characters(text: str) -> None:
    with pytest.raises(ValueError, match="invalid base64"):
        b64decode(text)


def test_b64_rejects_non_ascii_with_value_error() -> None:
    with pytest.raises(ValueError):
        b64decode("ü" * 4)


def test_b64_decode_is_lenient_about_trailing_padding() -> None:
    # Documented as "unpadded (or padded)": any run of trailing '=' is ignored.
    assert b64decode("Zg====") == b"f"
    assert b64decode("=") == b""


def test_json_round_trip() -> None:
    obj = {"type": "ping", "n": 1, "nested": [1, "two", None, True]}
    assert loads(dumps(obj)) == obj
    assert loads(dumps(obj).decode()) == obj
    assert isinstance(dumps(obj), bytes)


@pytest.mark.parametrize("data", ["", "{", b"\xff", "[1,]", "NaN"])
def test_loads_rejects_invalid_json(data: str | bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        loads(data)
    assert info.value.code == ErrorCode.BAD_FRAME
    assert "JSON" in info.value.message
