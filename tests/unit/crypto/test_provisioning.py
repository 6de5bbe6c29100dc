"""The provisioning cipher, the provision message and the porch://link URI (sans-IO)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest
import zxingcpp

from porch.crypto import CryptoError, DecryptError, ProvisioningError
from porch.crypto.errors import BAD_PROVISIONING, DECRYPT_FAILED, UNSUPPORTED_VERSION
from porch.crypto.provisioning import (
    MAX_ENVELOPE_LEN,
    MAX_URI_LEN,
    MIN_ENVELOPE_LEN,
    ProvisioningKeyPair,
    ProvisionMessage,
    build_provisioning_uri,
    encrypt_provision,
    encrypt_provision_with,
    pad_plaintext,
    parse_provisioning_uri,
    provision_message_from_json,
    provision_message_to_json,
    qr_text,
)

CHANNEL = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
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


def test_uri_round_trip(new_device: ProvisioningKeyPair) -> None:
    uri = build_provisioning_uri(CHANNEL, new_device.public_bytes)
    key = base64.urlsafe_b64encode(new_device.public_bytes).rstrip(b"=").decode()
    assert uri == f"porch://link?uuid={CHANNEL}&pub_key={key}&v=1"
    parsed = parse_provisioning_uri(uri)
    assert parsed.channel_id == CHANNEL
    assert parsed.public_key == new_device.public_bytes
    assert str(parsed) == uri
    # Parameter order and unknown (small) parameters do not matter.
    assert parse_provisioning_uri(f"porch://link?v=1&x=y&pub_key={key}&uuid={CHANNEL}") == parsed


KEY = "a9Oi0ZDnBMnOoCUVVu591d7lFjZBEBrbg1zW662tNCc"


@pytest.mark.parametrize(
    "uri",
    [
        f"porch://link?pub_key={KEY}&v=1",  # no uuid
        f"porch://link?uuid={CHANNEL}&v=1",  # no pub_key
        f"porch://link?uuid={CHANNEL}&pub_key={KEY}",  # no version
        f"porch://link?uuid={CHANNEL}&pub_key={KEY}&v=",
        f"porch://link?uuid={CHANNEL}&pub_key={KEY}&v=one",
        f"porch://link?uuid={CHANNEL}&pub_key={KEY}&v=01",
        f"porch://link?uuid={CHANNEL}&pub_key={KEY}&v=1234567890",
        f"porch://link?uuid={CHANNEL}&pub_key={KEY}&v=1&v=1",
        f"porch://link?uuid={CHANNEL}&pub_key={KEY[:-1]}!&v=1",  # bad base64url
        f"porch://link?uuid={CHANNEL}&pub_key={KEY[:-1]}&v=1",  # 31.x bytes
        f"porch://link?uuid={CHANNEL}&pub_key={KEY}AAAA&v=1",  # 35 bytes
        f"porch://link?uuid={CHANNEL}&pub_key={KEY}=&v=1",  # padded
        f"porch://link?uuid={CHANNEL}&pub_key={KEY[:-1]}d&v=1",  # non-canonical last char
        f"porch://link?uuid={CHANNEL}&pub_key={base64.b64encode(bytes([251] * 32)).decode()}&v=1",
        f"porch://link?uuid={CHANNEL.upper()}&pub_key={KEY}&v=1",
        f"porch://link?uuid=not-a-uuid&pub_key={KEY}&v=1",
        f"sgnl://linkdevice?uuid={CHANNEL}&pub_key={KEY}&v=1",  # wrong scheme
        f"https://link?uuid={CHANNEL}&pub_key={KEY}&v=1",
        f"porch://devices?uuid={CHANNEL}&pub_key={KEY}&v=1",
        f"porch://link/x?uuid={CHANNEL}&pub_key={KEY}&v=1",
        f"porch://link?uuid={CHANNEL}&pub_key={KEY}&v=1#frag",
        f"porch://link?uuid={CHANNEL}&pub_key={KEY}&v=1&pad=" + "x" * MAX_URI_LEN,  # huge
        f"porch://link?uuid={CHANNEL}&pub_key={KEY}&v=1" + "&a=b" * 10,  # too many params
        f"porch://link?uuid={CHANNEL}&pub_key={KEY}&v=1&junk",  # not key=value
        f"porch://link?uuid={CHANNEL}\n&pub_key={KEY}&v=1",
        f"porch://link?uuid={CHANNEL}&pub_key={KEY}&v=1&é=1",
        "",
        "porch://link",
    ],
)
def test_malformed_uri_is_refused(uri: str) -> None:
    with pytest.raises(ProvisioningError) as info:
        parse_provisioning_uri(uri)
    assert info.value.code == BAD_PROVISIONING


@pytest.mark.parametrize("version", ["0", "2", "99", "123456789"])
def test_unknown_uri_version_is_refused_clearly(version: str) -> None:
    # Other fields are not checked first: another version may well change them.
    with pytest.raises(ProvisioningError, match="not supported") as info:
        parse_provisioning_uri(f"porch://link?uuid=anything&v={version}")
    assert info.value.code == UNSUPPORTED_VERSION


def test_builder_refuses_bad_fields(new_device: ProvisioningKeyPair) -> None:
    with pytest.raises(ProvisioningError):
        build_provisioning_uri("not-a-uuid", new_device.public_bytes)
    with pytest.raises(ProvisioningError):
        build_provisioning_uri(CHANNEL, new_device.public_bytes[:31])


def _decode_qr(text: str) -> list[str]:
    """Turn the half-block drawing back into pixels and read it with zxing-cpp."""
    top_light = {"█": True, "▀": True, "▄": False, " ": False}
    bottom_light = {"█": True, "▀": False, "▄": True, " ": False}
    rows: list[list[bool]] = []
    for line in text.splitlines():
        rows.append([top_light[c] for c in line])
        rows.append([bottom_light[c] for c in line])
    scale = 4
    width, height = len(rows[0]) * scale, len(rows) * scale
    pixels = bytearray()
    for row in rows:
        line = b"".join(b"\xff" * scale if light else b"\x00" * scale for light in row)
        pixels += line * scale
    image = memoryview(bytes(pixels)).cast("B", (height, width))
    return [code.text for code in zxingcpp.read_barcodes(image)]


def test_qr_text_decodes_back_to_the_uri(new_device: ProvisioningKeyPair) -> None:
    uri = build_provisioning_uri(CHANNEL, new_device.public_bytes)
    text = qr_text(uri)
    assert set(text) <= {"█", "▀", "▄", " ", "\n"}
    assert _decode_qr(text) == [uri]
    assert qr_text(uri) == text  # deterministic
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1
    # Version 6 (41 modules) plus the 4-module quiet zone each side, two rows per line.
    assert len(lines[0]) == 41 + 8
    assert len(lines) == (41 + 8 + 1) // 2


def test_uri_name_is_optional_trimmed_and_checked() -> None:
    key = bytes(range(32))
    plain = build_provisioning_uri(CHANNEL, key)
    assert parse_provisioning_uri(plain).name is None
    named = build_provisioning_uri(CHANNEL, key, "Anna's laptop ✓")
    assert parse_provisioning_uri(named).name == "Anna's laptop ✓"
    assert str(parse_provisioning_uri(named)) == named
    long = parse_provisioning_uri(build_provisioning_uri(CHANNEL, key, "x" * 100))
    assert long.name == "x" * 32
    for bad in ("x" * 33, "tab%09here"):
        with pytest.raises(ProvisioningError):
            parse_provisioning_uri(f"{plain}&name={bad}")
