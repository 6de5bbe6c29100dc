"""The signed device list (docs/protocol.md, section 7, "Device list"): what is refused."""

from __future__ import annotations

import pytest

from porch.crypto.errors import SignatureError
from porch.crypto.signing import (
    DEVICE_LIST_LABEL,
    MAX_LISTED_DEVICES,
    ListedDevice,
    MasterKey,
    device_list_payload,
    parse_device_list,
    verify_device_list,
)

ACCOUNT = "b7f3c2a0-0000-4000-8000-00000000beef"
KEY = "FxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxc"


def _devices(*ids: int) -> list[ListedDevice]:
    return [ListedDevice(i, 100 + i, KEY) for i in ids]


def test_round_trip_sorts_by_device_id() -> None:
    payload = device_list_payload(ACCOUNT, 3, _devices(5, 1, 2))
    parsed = parse_device_list(payload)
    assert parsed.account_id == ACCOUNT
    assert parsed.version == 3
    assert [d.device_id for d in parsed.devices] == [1, 2, 5]
    assert parsed.device_ids == {1, 2, 5}


@pytest.mark.parametrize(
    ("version", "devices"),
    [
        (0, _devices(1)),  # versions start at 1
        (2**64, _devices(1)),
        (1, []),  # an account always has a device
        (1, _devices(1, 1)),  # listed twice
        (1, _devices(*range(1, MAX_LISTED_DEVICES + 2))),
        (1, [ListedDevice(0, 1, KEY)]),
        (1, [ListedDevice(1, 2**32, KEY)]),
        (1, [ListedDevice(1, 1, "short")]),
    ],
)
def test_bad_lists_are_refused(version: int, devices: list[ListedDevice]) -> None:
    with pytest.raises(ValueError):
        device_list_payload(ACCOUNT, version, devices)


def test_parse_refuses_what_the_builder_would_not_make() -> None:
    good = device_list_payload(ACCOUNT, 1, _devices(1, 2))
    with pytest.raises(ValueError):
        parse_device_list(good + b"\x00")  # trailing bytes
    with pytest.raises(ValueError):
        parse_device_list(good[:-1])  # truncated
    with pytest.raises(ValueError):
        parse_device_list(b"porch/device/v1\x00" + good[len(DEVICE_LIST_LABEL) :])
    # The same entries, out of order: the signature would be over a non-canonical encoding.
    head = len(DEVICE_LIST_LABEL) + len(ACCOUNT) + 1 + 10
    entries = good[head:]
    swapped = good[:head] + entries[40:] + entries[:40]
    with pytest.raises(ValueError):
        parse_device_list(swapped)


def test_verify_checks_the_signer_and_the_bytes() -> None:
    master, other = MasterKey.generate(), MasterKey.generate()
    payload = device_list_payload(ACCOUNT, 7, _devices(1, 3))
    signature = master.sign(payload)
    assert verify_device_list(master.public_b64, payload, signature).version == 7
    with pytest.raises(SignatureError):
        verify_device_list(other.public_b64, payload, signature)  # another account's key
    tampered = device_list_payload(ACCOUNT, 8, _devices(1, 3))
    with pytest.raises(SignatureError):
        verify_device_list(master.public_b64, tampered, signature)
    with pytest.raises(SignatureError):
        verify_device_list(master.public_b64, b"junk", signature)
