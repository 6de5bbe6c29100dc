"""Safety numbers (docs/protocol.md, "Safety numbers"); shared vectors are in test_vectors.py."""

from __future__ import annotations

import hashlib

import pytest

from porch.crypto.errors import CryptoError
from porch.crypto.safety import (
    BAD_SAFETY_NUMBER,
    ITERATIONS,
    PAYLOAD_LEN,
    VERSION,
    Comparison,
    SafetyNumber,
    SafetyNumberError,
    decode_payload,
    encode_half,
    encode_payload,
    fingerprint_hash,
    format_digits,
    master_identity_key,
    numeric_fingerprint,
    safety_number,
)
from porch.crypto.signing import MasterKey
from porch.protocol.codec import b64encode

ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
BOB = "b7f3c2a0-0000-4000-8000-00000000beef"
ALICE_KEY = MasterKey.from_private_bytes(bytes(range(32))).public_b64
BOB_KEY = MasterKey.from_private_bytes(bytes(range(32, 64))).public_b64
MALLORY_KEY = MasterKey.from_private_bytes(bytes(range(64, 96))).public_b64

# libsignal rust/protocol/src/fingerprint.rs, fingerprint_test_v1/_v2.
SIGNAL_ALICE = bytes.fromhex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
SIGNAL_BOB = bytes.fromhex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
SIGNAL_DIGITS = "300354477692869396892869876765458257569162576843440918079131"


def pair(remote_key: str = BOB_KEY) -> tuple[SafetyNumber, SafetyNumber]:
    """(Alice's view, Bob's view), where Alice sees ``remote_key`` as Bob's key."""
    return (
        safety_number(ALICE, ALICE_KEY, BOB, remote_key),
        safety_number(BOB, BOB_KEY, ALICE, ALICE_KEY),
    )


def test_both_sides_see_the_same_sixty_digits() -> None:
    alice, bob = pair()
    assert alice.digits == bob.digits
    assert len(alice.digits) == 60
    assert alice.digits.isdigit()
    # The halves are swapped between the views, and each QR payload puts its own half first.
    assert (alice.local, alice.remote) == (bob.remote, bob.local)
    assert alice.qr_payload() != bob.qr_payload()


def test_halves_are_sorted() -> None:
    alice, _ = pair()
    halves = {encode_half(alice.local), encode_half(alice.remote)}
    assert alice.digits == "".join(sorted(halves))


def test_a_changed_key_changes_the_number() -> None:
    alice, _ = pair()
    attacked, bob = pair(remote_key=MALLORY_KEY)
    assert attacked.digits != alice.digits
    assert attacked.digits != bob.digits
    # Only the changed account's half moves.
    assert attacked.local == alice.local
    assert attacked.remote != alice.remote
    assert attacked.compare(bob.qr_payload()) is Comparison.MISMATCH
    assert bob.compare(attacked.qr_payload()) is Comparison.MISMATCH


def test_a_changed_account_id_changes_the_number() -> None:
    alice, _ = pair()
    other = safety_number(ALICE, ALICE_KEY, "b7f3c2a0-0000-4000-8000-00000000beee", BOB_KEY)
    assert other.digits != alice.digits


def test_display_is_twelve_groups_of_five() -> None:
    alice, _ = pair()
    shown = alice.display()
    groups = shown.split(" ")
    assert len(groups) == 12
    assert all(len(g) == 5 and g.isdigit() for g in groups)
    assert "".join(groups) == alice.digits
    assert alice.groups() == tuple(groups)
    assert format_digits(SIGNAL_DIGITS) == (
        "30035 44776 92869 39689 28698 76765 45825 75691 62576 84344 09180 79131"
    )


@pytest.mark.parametrize("digits", ["1" * 59, "1" * 61, "1" * 59 + "a", "\u0661" * 60, ""])
def test_format_refuses_anything_but_sixty_ascii_digits(digits: str) -> None:
    with pytest.raises(ValueError):
        format_digits(digits)


def test_half_keeps_leading_zeros() -> None:
    # 5 zero bytes are 0 mod 100000, and must still show as five digits.
    assert encode_half(bytes(30)) == "0" * 30
    assert encode_half(b"\x00\x00\x01\x86\xa0" * 6) == "00000" * 6  # 100000 mod 100000
    assert encode_half(b"\xff" * 30) == "27775" * 6  # (2**40 - 1) % 100000 = 1099511627775 % 100000
    with pytest.raises(ValueError):
        encode_half(bytes(29))


def test_qr_payload_round_trip() -> None:
    alice, bob = pair()
    payload = alice.qr_payload()
    assert len(payload) == PAYLOAD_LEN == 74
    assert decode_payload(payload) == (VERSION, alice.local, alice.remote)
    assert alice.compare(bob.qr_payload()) is Comparison.MATCH
    assert bob.compare(alice.qr_payload()) is Comparison.MATCH


def test_qr_payload_is_libsignal_protobuf() -> None:
    # libsignal's fingerprint_encodings test.
    expected = "080212220a20" + "12" * 32 + "1a220a20" + "ba" * 32
    assert encode_payload(2, b"\x12" * 32, b"\xba" * 32).hex() == expected


def test_scanning_ones_own_code_is_a_mismatch() -> None:
    # Swapped sides: local and remote must cross over, as in libsignal's compare.
    alice, bob = pair()
    assert alice.compare(alice.qr_payload()) is Comparison.MISMATCH
    assert bob.compare(bob.qr_payload()) is Comparison.MISMATCH


def test_one_wrong_half_is_a_mismatch() -> None:
    alice, bob = pair()
    assert alice.compare(encode_payload(VERSION, bob.local, bytes(32))) is Comparison.MISMATCH
    assert alice.compare(encode_payload(VERSION, bytes(32), bob.remote)) is Comparison.MISMATCH


def test_different_version() -> None:
    alice, bob = pair()
    v1 = encode_payload(1, bob.local, bob.remote)
    assert alice.compare(v1) is Comparison.DIFFERENT_VERSION
    # A later version may use another layout: still "different version", not malformed.
    assert alice.compare(bytes([0x08, 0x03, 0xFF])) is Comparison.DIFFERENT_VERSION
    # Multi-byte varint version (300) and an absent version field (proto3's 0).
    assert alice.compare(bytes([0x08, 0xAC, 0x02])) is Comparison.DIFFERENT_VERSION
    assert alice.compare(v1[2:]) is Comparison.DIFFERENT_VERSION
    # Display digits do not depend on the version (libsignal's mismatching_versions test).
    signal_v1 = numeric_fingerprint(
        b"+14152222222", SIGNAL_ALICE, b"+14153333333", SIGNAL_BOB, version=1
    )
    signal_v2 = numeric_fingerprint(b"+14152222222", SIGNAL_ALICE, b"+14153333333", SIGNAL_BOB)
    assert signal_v1.digits == signal_v2.digits == SIGNAL_DIGITS
    assert signal_v1.qr_payload() != signal_v2.qr_payload()


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00" * 74,
        b"\x08",  # version tag without its varint
        bytes([0x08, 0x80]),  # unterminated varint
        bytes([0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),  # more than 32 bits
        bytes([0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),  # longer than 5 bytes
        b"\x08\x02" + b"\x00" * 72,  # right version and length, wrong tags
        # Version 2 as a padded two-byte varint, then a valid layout cut to 74 bytes.
        (b"\x08\x82\x00" + encode_payload(VERSION, bytes(32), bytes(32))[2:])[:74],
        b"\x08\x02" + bytes(range(72)),
        b"\x08\x02\x12\x22\x0a\x20" + b"\x01" * 32,  # remote half missing
        b"\x08\x02\x12\x22\x0a\x20" + b"\x01" * 32 + b"\x1a\x22\x0a\x20" + b"\x02" * 33,
        b"\x08\x02\x12\x22\x0a\x20" + b"\x01" * 32 + b"\x1a\x22\x0a\x1f" + b"\x02" * 32,
        b"\x08\x02" + b"\x1a\x22\x0a\x20" + b"\x01" * 32 + b"\x12\x22\x0a\x20" + b"\x02" * 32,
        b"\x08" * 2000,
    ],
)
def test_malformed_payload_is_a_structured_error(payload: bytes) -> None:
    alice, _ = pair()
    with pytest.raises(SafetyNumberError) as info:
        alice.compare(payload)
    assert info.value.code == BAD_SAFETY_NUMBER
    assert isinstance(info.value, CryptoError)


def test_iterations_follow_libsignal() -> None:
    # iterations counts every SHA-512 call: 2 means the first hash and one more round.

    first = hashlib.sha512(b"\x00\x00" + b"K" + b"id" + b"K").digest()
    assert fingerprint_hash(b"id", b"K", 2) == hashlib.sha512(first + b"K").digest()
    assert ITERATIONS == 5200
    for bad in (0, 1, 1_000_001, True):
        with pytest.raises(ValueError):
            fingerprint_hash(b"id", b"K", bad)


@pytest.mark.parametrize(
    "account_id",
    [
        "alice",
        "1B4E28BA-2FA1-11D2-883F-0016D3CCA427",
        "{1b4e28ba-2fa1-11d2-883f-0016d3cca427}",
        "1b4e28ba2fa111d2883f0016d3cca427",
        "1b4e28ba-2fa1-11d2-883f-0016d3cca427\n",
        "",
    ],
)
def test_account_id_must_be_canonical(account_id: str) -> None:
    with pytest.raises(ValueError):
        safety_number(account_id, ALICE_KEY, BOB, BOB_KEY)
    with pytest.raises(ValueError):
        safety_number(ALICE, ALICE_KEY, account_id, BOB_KEY)


@pytest.mark.parametrize("key", [b64encode(bytes(31)), b64encode(bytes(33)), "not base64!", ""])
def test_master_key_must_be_32_bytes(key: str) -> None:
    with pytest.raises(ValueError):
        safety_number(ALICE, key, BOB, BOB_KEY)


def test_identity_key_carries_the_ed25519_type_byte() -> None:
    raw = bytes(range(32))
    assert master_identity_key(b64encode(raw)) == b"\xed" + raw


@pytest.mark.parametrize(
    ("stable_id", "key"), [(b"", b"K"), (b"id", b""), (b"x" * 257, b"K"), (b"id", b"K" * 257)]
)
def test_generic_inputs_are_bounded(stable_id: bytes, key: bytes) -> None:
    with pytest.raises(ValueError):
        fingerprint_hash(stable_id, key)


@pytest.mark.parametrize("version", [0, 128, -1, True])
def test_version_is_bounded(version: int) -> None:
    with pytest.raises(ValueError):
        encode_payload(version, bytes(32), bytes(32))
    with pytest.raises(ValueError):
        numeric_fingerprint(b"a", b"K", b"b", b"K", version=version, iterations=2)


def test_payload_halves_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        encode_payload(VERSION, bytes(31), bytes(32))
    with pytest.raises(ValueError):
        encode_payload(VERSION, bytes(32), bytes(64))
