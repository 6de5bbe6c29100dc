"""Device bindings and one-time key signatures (docs/protocol.md, "Keys and signatures")."""

from __future__ import annotations

import dataclasses

import pytest

from porch.crypto.errors import SignatureError
from porch.crypto.olm import OlmMachine
from porch.crypto.signing import (
    MasterKey,
    device_binding_payload,
    one_time_key_payload,
    verify_device_binding,
    verify_ed25519,
    verify_one_time_key,
)
from porch.protocol.codec import b64decode, b64encode

CURVE = b64encode(bytes(range(32)))
ED = b64encode(bytes(range(32, 64)))


@dataclasses.dataclass
class Binding:
    account_id: str = "acct-1"
    device_id: int = 7
    registration_id: int = 0xDEADBEEF
    curve25519: str = CURVE
    ed25519: str = ED

    def args(self) -> tuple[str, int, int, str, str]:
        return (
            self.account_id,
            self.device_id,
            self.registration_id,
            self.curve25519,
            self.ed25519,
        )


def test_device_binding_payload_layout() -> None:
    payload = device_binding_payload(*Binding().args())
    assert payload == (
        b"porch/device/v1\x00acct-1\x00"
        + b"\x00\x00\x00\x07"
        + b"\xde\xad\xbe\xef"
        + bytes(range(32))
        + bytes(range(32, 64))
    )


def test_one_time_key_payload_layout() -> None:
    assert one_time_key_payload("AAAAAQ", CURVE, False) == (
        b"porch/otk/v1\x00AAAAAQ\x00" + bytes(range(32)) + b"\x00"
    )
    assert one_time_key_payload("AAAAAQ", CURVE, True)[-1:] == b"\x01"


@pytest.mark.parametrize(
    "change",
    [
        {"account_id": "acct\x00x"},
        {"account_id": "acçt"},
        {"device_id": -1},
        {"device_id": 2**32},
        {"registration_id": 2**32},
        {"curve25519": b64encode(bytes(31))},
        {"ed25519": "not base64!"},
    ],
)
def test_device_binding_payload_rejects_malformed(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        device_binding_payload(*dataclasses.replace(Binding(), **change).args())  # type: ignore[arg-type]


def test_one_time_key_payload_rejects_malformed() -> None:
    with pytest.raises(ValueError):
        one_time_key_payload("a\x00b", CURVE, False)
    with pytest.raises(ValueError):
        one_time_key_payload("a", b64encode(bytes(33)), False)


def test_master_key_round_trip() -> None:
    master = MasterKey.generate()
    sig = master.sign_device(*Binding().args())
    verify_device_binding(master.public_b64, *Binding().args(), sig)
    restored = MasterKey.from_private_bytes(master.private_bytes())
    assert restored.public_b64 == master.public_b64
    # Ed25519 is deterministic (RFC 8032), so the restored key signs identically.
    assert restored.sign_device(*Binding().args()) == sig
    assert len(b64decode(master.public_b64)) == 32
    assert len(b64decode(sig)) == 64
    assert "=" not in sig and "=" not in master.public_b64


def test_master_key_repr_hides_private_key() -> None:
    master = MasterKey.from_private_bytes(bytes(32))
    assert b64encode(bytes(32)) not in repr(master)
    assert master.public_b64 in repr(master)


def test_master_key_seed_length() -> None:
    with pytest.raises(ValueError):
        MasterKey.from_private_bytes(bytes(31))


def test_device_binding_wrong_master_key() -> None:
    sig = MasterKey.generate().sign_device(*Binding().args())
    with pytest.raises(SignatureError) as info:
        verify_device_binding(MasterKey.generate().public_b64, *Binding().args(), sig)
    assert info.value.code == "bad_signature"


@pytest.mark.parametrize(
    "change",
    [
        {"account_id": "acct-2"},
        {"device_id": 8},
        {"registration_id": 1},
        {"curve25519": ED},
        {"ed25519": CURVE},
    ],
)
def test_device_binding_altered_field(change: dict[str, object]) -> None:
    master = MasterKey.generate()
    sig = master.sign_device(*Binding().args())
    altered = dataclasses.replace(Binding(), **change)  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        verify_device_binding(master.public_b64, *altered.args(), sig)


def test_device_binding_malformed_inputs() -> None:
    master = MasterKey.generate()
    sig = master.sign_device(*Binding().args())
    bad_inputs = [
        ("not base64!", Binding(), sig),
        (b64encode(bytes(31)), Binding(), sig),
        (master.public_b64, Binding(), "not base64!"),
        (master.public_b64, Binding(), sig[:-4]),
        (master.public_b64, Binding(), b64encode(bytes(64))),
        (master.public_b64, Binding(curve25519="%%%"), sig),
        (master.public_b64, Binding(account_id="a\x00"), sig),
        (master.public_b64, Binding(device_id=-5), sig),
    ]
    for public, binding, signature in bad_inputs:
        with pytest.raises(SignatureError):
            verify_device_binding(public, *binding.args(), signature)


def test_signature_from_other_domain_rejected() -> None:
    # The same key signing an OTK payload must not validate as a device binding.
    master = MasterKey.generate()
    sig = master.sign(one_time_key_payload("k", CURVE, False))
    with pytest.raises(SignatureError):
        verify_device_binding(master.public_b64, *Binding().args(), sig)


def test_one_time_key_signed_by_device() -> None:
    device = OlmMachine.create(bytes(32))
    sig = device.sign(one_time_key_payload("AAAAAQ", CURVE, False))
    verify_one_time_key(device.ed25519, "AAAAAQ", CURVE, False, sig)
    for key_id, curve, fallback in [
        ("AAAAAg", CURVE, False),
        ("AAAAAQ", ED, False),
        ("AAAAAQ", CURVE, True),
    ]:
        with pytest.raises(SignatureError):
            verify_one_time_key(device.ed25519, key_id, curve, fallback, sig)
    with pytest.raises(SignatureError):
        verify_one_time_key(OlmMachine.create(bytes(32)).ed25519, "AAAAAQ", CURVE, False, sig)
    with pytest.raises(SignatureError):
        verify_one_time_key(device.ed25519, "AAAAAQ", "bad!", False, sig)
    with pytest.raises(SignatureError):
        verify_one_time_key(device.ed25519, "AAAAAQ", CURVE, False, "bad!")


def test_verify_ed25519_padded_base64_accepted() -> None:
    master = MasterKey.generate()
    sig = master.sign(b"x")
    verify_ed25519(master.public_b64 + "=", b"x", sig + "==")
    with pytest.raises(SignatureError):
        verify_ed25519(master.public_b64, b"y", sig)
