"""The provisioning cipher and the provision message (sans-IO); the URI: test_provisioning_uri."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from porch.crypto import CryptoError, DecryptError, ProvisioningError
from porch.crypto.errors import BAD_PROVISIONING, DECRYPT_FAILED, UNSUPPORTED_VERSION
from porch.crypto.provisioning import (
    MAX_ENVELOPE_LEN,
    MIN_ENVELOPE_LEN,
    ProvisioningKeyPair,
    ProvisionMessage,
    encrypt_provision,
    encrypt_provision_with,
    pad_plaintext,
    provision_message_from_json,
    provision_message_to_json,
)

MESSAGE = ProvisionMessage(
    account_id="b7f3c2a0-0000-4000-8000-00000000beef",
    master_seed=bytes(range(32)),
    phone="+14155550100",
    username="alice",
    provisioning_code="pc_0123456789abcdef",
    primary_device_id=1,
)


@pytest.fixture(scope="module")
def new_device() -> ProvisioningKeyPair:
    return ProvisioningKeyPair.generate()


@pytest.fixture(scope="module")
def envelope(new_device: ProvisioningKeyPair) -> bytes:
    return encrypt_provision(MESSAGE, new_device.public_bytes)


def test_round_trip(new_device: ProvisioningKeyPair, envelope: bytes) -> None:
    assert new_device.decrypt(envelope) == MESSAGE


def test_round_trip_without_username_and_at_the_bounds(new_device: ProvisioningKeyPair) -> None:
    for msg in (
        replace(MESSAGE, username=None),
        replace(
            MESSAGE,
            phone="+123456789012345",
            username="a" + "_" * 31,
            provisioning_code="~" * 128,
            primary_device_id=2**31 - 1,
        ),
    ):
        assert new_device.decrypt(encrypt_provision(msg, new_device.public_bytes)) == msg


def test_every_envelope_has_the_same_length(new_device: ProvisioningKeyPair) -> None:
    # Padding hides whether there is a username and how long the fields are.
    small = replace(MESSAGE, username=None, provisioning_code="x")
    large = replace(MESSAGE, username="a" * 32, provisioning_code="x" * 128)
    lengths = {len(encrypt_provision(m, new_device.public_bytes)) for m in (small, large)}
    assert lengths == {1 + 32 + 16 + 512 + 16 + 32}


def test_fresh_ephemeral_key_and_iv_each_time(new_device: ProvisioningKeyPair) -> None:
    first = encrypt_provision(MESSAGE, new_device.public_bytes)
    second = encrypt_provision(MESSAGE, new_device.public_bytes)
    assert first[1:33] != second[1:33]
    assert first[33:49] != second[33:49]


def test_wrong_key_cannot_decrypt(envelope: bytes) -> None:
    with pytest.raises(DecryptError) as info:
        ProvisioningKeyPair.generate().decrypt(envelope)
    assert info.value.code == DECRYPT_FAILED


def test_every_single_byte_tamper_is_refused(
    new_device: ProvisioningKeyPair, envelope: bytes
) -> None:
    # Version (byte 0), ephemeral key, IV, ciphertext and MAC: flip one bit in each byte in turn.
    for i in range(len(envelope)):
        tampered = bytearray(envelope)
        tampered[i] ^= 0x01
        with pytest.raises(CryptoError) as info:
            new_device.decrypt(bytes(tampered))
        expected = UNSUPPORTED_VERSION if i == 0 else DECRYPT_FAILED
        assert info.value.code == expected, i


def test_truncated_or_extended_envelope_is_refused(
    new_device: ProvisioningKeyPair, envelope: bytes
) -> None:
    for bad in (
        b"",
        envelope[: MIN_ENVELOPE_LEN - 1],
        envelope[:-1],
        envelope[:-16],  # a whole block fewer: right shape, wrong MAC
        envelope + b"\x00",
        envelope + bytes(16),
        envelope + bytes(MAX_ENVELOPE_LEN),
    ):
        with pytest.raises(DecryptError):
            new_device.decrypt(bad)


def test_low_order_ephemeral_key_is_refused(
    new_device: ProvisioningKeyPair, envelope: bytes
) -> None:
    tampered = envelope[:1] + bytes(32) + envelope[33:]  # the all-zero point has order 4
    with pytest.raises(DecryptError):
        new_device.decrypt(tampered)


def test_valid_mac_over_a_bad_message_is_a_provisioning_error(
    new_device: ProvisioningKeyPair,
) -> None:
    """A primary that authenticates garbage gets a structured error, not a crash."""
    ephemeral = ProvisioningKeyPair.generate()._private
    for plaintext, code in (
        (b"no padding marker", BAD_PROVISIONING),
        (pad_plaintext(b"[1]"), BAD_PROVISIONING),
        (pad_plaintext(b"\xff\xfe"), BAD_PROVISIONING),
        (pad_plaintext(b'{"v":2}'), UNSUPPORTED_VERSION),
        (pad_plaintext(b'{"v":1,"account_id":"x"}'), BAD_PROVISIONING),
    ):
        env = encrypt_provision_with(plaintext, new_device.public_bytes, ephemeral, bytes(16))
        with pytest.raises(ProvisioningError) as info:
            new_device.decrypt(env)
        assert info.value.code == code, plaintext


def _obj() -> dict[str, object]:
    result: dict[str, object] = json.loads(provision_message_to_json(MESSAGE))
    return result


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account_id", "B7F3C2A0-0000-4000-8000-00000000BEEF"),
        ("account_id", 7),
        ("master_seed", "AAAA"),
        ("master_seed", "not base64!"),
        ("master_seed", None),
        ("phone", "14155550100"),
        ("phone", "+1234567890123456"),
        ("username", "Alice"),
        ("username", "ab"),
        ("username", 5),
        ("provisioning_code", ""),
        ("provisioning_code", "has space"),
        ("provisioning_code", "x" * 129),
        ("primary_device_id", 0),
        ("primary_device_id", 2**31),
        ("primary_device_id", True),
        ("primary_device_id", "1"),
        ("v", "1"),
    ],
)
def test_malformed_message_fields_are_refused(field: str, value: object) -> None:
    obj = _obj()
    obj[field] = value
    with pytest.raises(ProvisioningError) as info:
        provision_message_from_json(json.dumps(obj).encode())
    assert info.value.code == BAD_PROVISIONING


def test_message_json_is_canonical_and_ignores_unknown_fields() -> None:
    raw = provision_message_to_json(MESSAGE)
    assert raw == json.dumps(_obj(), separators=(",", ":"), sort_keys=True).encode()
    obj = _obj()
    obj["later_field"] = {"x": 1}
    assert provision_message_from_json(json.dumps(obj).encode()) == MESSAGE
    del obj["phone"]
    with pytest.raises(ProvisioningError, match="phone"):
        provision_message_from_json(json.dumps(obj).encode())


def test_sender_refuses_a_bad_message(new_device: ProvisioningKeyPair) -> None:
    with pytest.raises(ProvisioningError):
        encrypt_provision(replace(MESSAGE, master_seed=b"short"), new_device.public_bytes)


def test_repr_hides_the_master_key_and_code() -> None:
    text = repr(MESSAGE) + str(MESSAGE)
    assert MESSAGE.provisioning_code not in text
    assert MESSAGE.master_seed.hex() not in text
    assert repr(MESSAGE.master_seed) not in text
