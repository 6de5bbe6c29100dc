"""The kind-2 envelope body (spec E): exact layout, and bounds on everything read."""

from __future__ import annotations

import pytest
import vodozemac

from porch.crypto.content import pad
from porch.crypto.errors import CryptoError, DecryptError
from porch.crypto.group_message import (
    MAX_BODY_BYTES,
    GroupMessage,
    decode_group_message,
    encode_group_message,
)
from porch.crypto.megolm import MAX_MESSAGE_BYTES
from porch.protocol.codec import b64decode

_SESSION = vodozemac.GroupSession()
CIPHERTEXT = bytes(_SESSION.encrypt(pad(b"{}")).to_bytes())
MESSAGE = GroupMessage("g-1", _SESSION.session_id, CIPHERTEXT)


def test_layout_is_version_length_id_session_ciphertext() -> None:
    body = encode_group_message(MESSAGE)
    assert body == b"\x01\x03g-1" + b64decode(_SESSION.session_id) + CIPHERTEXT
    assert decode_group_message(body) == MESSAGE


def test_a_non_ascii_group_id_of_128_bytes_round_trips() -> None:
    message = GroupMessage("é" * 64, _SESSION.session_id, CIPHERTEXT)
    assert decode_group_message(encode_group_message(message)) == message


@pytest.mark.parametrize(
    "message",
    [
        GroupMessage("", _SESSION.session_id, CIPHERTEXT),
        GroupMessage("x" * 129, _SESSION.session_id, CIPHERTEXT),
        GroupMessage("a\x00b", _SESSION.session_id, CIPHERTEXT),
        GroupMessage("\ud800", _SESSION.session_id, CIPHERTEXT),
        GroupMessage("g", "not base64!", CIPHERTEXT),
        GroupMessage("g", "AAAA", CIPHERTEXT),
        GroupMessage("g", _SESSION.session_id, b"short"),
        GroupMessage("g", _SESSION.session_id, b"x" * (MAX_MESSAGE_BYTES + 1)),
    ],
)
def test_encoding_refuses_fields_out_of_bounds(message: GroupMessage) -> None:
    with pytest.raises(CryptoError):
        encode_group_message(message)


GOOD = encode_group_message(MESSAGE)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "decrypt_failed"),
        (b"\x01", "decrypt_failed"),
        (b"\x02" + GOOD[1:], "unsupported_version"),
        (b"\x01\x00" + GOOD[2:], "decrypt_failed"),  # empty group id
        (b"\x01\x81" + GOOD[2:], "decrypt_failed"),  # id longer than 128
        (b"\x01\xff" + b"g" * 40, "decrypt_failed"),  # truncated
        (GOOD[: 2 + 3 + 32 + 10], "decrypt_failed"),  # no room for a Megolm message
        (b"\x01\x03g\x00g" + GOOD[5:], "decrypt_failed"),  # NUL in the id
        (b"\x01\x02\xc3\x28" + GOOD[5:], "decrypt_failed"),  # not UTF-8
        (GOOD + b"x" * (MAX_BODY_BYTES - len(GOOD) + 1), "decrypt_failed"),
    ],
)
def test_decoding_refuses_malformed_bodies_unread(body: bytes, code: str) -> None:
    with pytest.raises(CryptoError) as err:
        decode_group_message(body)
    assert err.value.code == code
    if code == "decrypt_failed":
        assert isinstance(err.value, DecryptError)
