"""The porch://link provisioning URI and its QR code (sans-IO)."""

from __future__ import annotations

import base64

import pytest
import zxingcpp

from porch.crypto import ProvisioningError
from porch.crypto.errors import BAD_PROVISIONING, UNSUPPORTED_VERSION
from porch.crypto.provisioning import ProvisioningKeyPair
from porch.crypto.provisioning_uri import (
    MAX_URI_LEN,
    build_provisioning_uri,
    parse_provisioning_uri,
    qr_text,
)

CHANNEL = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


@pytest.fixture(scope="module")
def new_device() -> ProvisioningKeyPair:
    return ProvisioningKeyPair.generate()


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
