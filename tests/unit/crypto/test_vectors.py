"""Recompute every entry of tests/vectors/crypto.json, which other implementations share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from porch.crypto.at_rest import Sealer
from porch.crypto.content import (
    GroupKey,
    GroupStateKey,
    GroupUpdate,
    Receipt,
    Retry,
    Sent,
    Text,
    Typing,
    content_to_json,
    decode_content,
    encode_content,
    pad,
    unpad,
)
from porch.crypto.group_message import GroupMessage, decode_group_message, encode_group_message
from porch.crypto.group_state import (
    GroupSettings,
    GroupState,
    associated_data,
    open_group_state,
    pad_state,
    seal_group_state_with,
    state_to_json,
)
from porch.crypto.megolm import group_key_payload
from porch.crypto.provisioning import (
    ProvisioningKeyPair,
    ProvisionMessage,
    derive_keys,
    encrypt_provision_with,
    pad_plaintext,
    provision_message_to_json,
)
from porch.crypto.provisioning_uri import build_provisioning_uri, parse_provisioning_uri
from porch.crypto.rich import Attachment, Delete, Edit, Quote, Reaction, Timer
from porch.crypto.safety import (
    Comparison,
    account_stable_id,
    fingerprint_hash,
    master_identity_key,
    numeric_fingerprint,
    safety_number,
)
from porch.crypto.signing import (
    ListedDevice,
    MasterKey,
    device_binding_payload,
    device_list_payload,
    one_time_key_payload,
    verify_device_binding,
    verify_device_list,
    verify_ed25519,
    verify_one_time_key,
)
from porch.protocol.codec import b64decode, b64encode

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "crypto.json").read_text("utf-8")
)


@pytest.mark.parametrize("v", VECTORS["device_binding"])
def test_device_binding(v: dict[str, Any]) -> None:
    master = MasterKey.from_private_bytes(bytes.fromhex(v["master_seed_hex"]))
    assert master.public_b64 == v["master_public"]
    fields = (v["account_id"], v["device_id"], v["registration_id"], v["curve25519"], v["ed25519"])
    assert device_binding_payload(*fields).hex() == v["payload_hex"]
    assert master.sign_device(*fields) == v["signature"]
    verify_device_binding(v["master_public"], *fields, v["signature"])


@pytest.mark.parametrize("v", VECTORS["one_time_key"])
def test_one_time_key(v: dict[str, Any]) -> None:
    signer = MasterKey.from_private_bytes(bytes.fromhex(v["signer_seed_hex"]))
    assert signer.public_b64 == v["signer_ed25519"]
    payload = one_time_key_payload(v["key_id"], v["curve25519"], v["fallback"])
    assert payload.hex() == v["payload_hex"]
    assert signer.sign(payload) == v["signature"]
    verify_ed25519(v["signer_ed25519"], payload, v["signature"])
    verify_one_time_key(
        v["signer_ed25519"], v["key_id"], v["curve25519"], v["fallback"], v["signature"]
    )


@pytest.mark.parametrize("v", VECTORS["device_list"])
def test_device_list(v: dict[str, Any]) -> None:
    master = MasterKey.from_private_bytes(bytes.fromhex(v["master_seed_hex"]))
    assert master.public_b64 == v["master_public"]
    devices = [ListedDevice(**d) for d in v["devices"]]
    payload = device_list_payload(v["account_id"], v["version"], devices)
    assert payload.hex() == v["payload_hex"]
    assert master.sign_device_list(v["account_id"], v["version"], devices) == v["signature"]
    parsed = verify_device_list(v["master_public"], payload, v["signature"])
    assert (parsed.account_id, parsed.version) == (v["account_id"], v["version"])
    assert list(parsed.devices) == sorted(devices, key=lambda d: d.device_id)


@pytest.mark.parametrize("v", VECTORS["padding"])
def test_padding(v: dict[str, Any]) -> None:
    data = bytes.fromhex(v["input_hex"])
    assert pad(data).hex() == v["padded_hex"]
    assert unpad(bytes.fromhex(v["padded_hex"])) == data


def _content(
    obj: dict[str, Any],
) -> Text | Receipt | Typing | Retry | GroupKey | GroupStateKey | GroupUpdate | Sent:
    if obj["t"] == "group_update":
        return GroupUpdate(obj["group"], obj["revision"], obj["action"], tuple(obj["targets"]))
    if obj["t"] == "sent":
        inner = _content(obj["c"])
        assert isinstance(inner, Text | Receipt)
        return Sent(to=obj["to"], content=inner)
    if obj["t"] == "group_key":
        return GroupKey(group=obj["group"], session=obj["session"], key=obj["key"], sig=obj["sig"])
    if obj["t"] == "group_state_key":
        return GroupStateKey(group=obj["group"], epoch=obj["epoch"], key=obj["key"])
    if obj["t"] == "text":
        return Text(id=obj["id"], body=obj["body"], ts=obj["ts"], group=obj.get("group"))
    if obj["t"] == "receipt":
        return Receipt(kind=obj["kind"], ids=tuple(obj["ids"]))
    if obj["t"] == "retry":
        return Retry(ts=obj["ts"], device=obj["device"], id=obj.get("id"))
    assert obj["t"] == "typing"
    return Typing(state=obj["state"])


@pytest.mark.parametrize("v", VECTORS["content"])
def test_content(v: dict[str, Any]) -> None:
    _check_content(_content(v["content"]), v)


def _check_content(content: Any, v: dict[str, Any]) -> None:
    raw = content_to_json(content)
    assert raw == v["json"].encode("utf-8")
    assert raw.hex() == v["json_hex"]
    encoded = encode_content(content)
    assert len(encoded) == v["padded_length"]
    assert decode_content(encoded) == content


def _attachment(obj: dict[str, Any]) -> Attachment:
    thumb = obj.get("thumb")
    return Attachment(
        id=obj["id"],
        key=b64decode(obj["key"]),
        digest=b64decode(obj["digest"]),
        size=obj["size"],
        content_type=obj["type"],
        name=obj.get("name"),
        width=obj.get("w"),
        height=obj.get("h"),
        duration_ms=obj.get("duration"),
        thumbnail=None if thumb is None else b64decode(thumb),
        blurhash=obj.get("blurhash"),
        voice=obj.get("voice", False),
    )


def _rich(obj: dict[str, Any]) -> Text | Sent | Reaction | Edit | Delete | Timer:
    """Build a rich_content vector's object field by field (docs/protocol.md, "Content object")."""
    group = obj.get("group")
    if obj["t"] == "sent":
        inner = _rich(obj["c"])
        assert not isinstance(inner, Sent)
        return Sent(to=obj["to"], content=inner)
    if obj["t"] == "text":
        reply = obj.get("reply")
        return Text(
            id=obj["id"],
            body=obj["body"],
            ts=obj["ts"],
            group=group,
            attachments=tuple(_attachment(a) for a in obj.get("att", ())),
            reply=None if reply is None else Quote(reply["id"], reply["author"], reply["body"]),
            forwarded=obj.get("fwd", False),
            expires=obj.get("exp"),
        )
    if obj["t"] == "reaction":
        return Reaction(obj["id"], obj["author"], obj["emoji"], obj["ts"], group=group)
    if obj["t"] == "edit":
        return Edit(obj["id"], obj["body"], obj["ts"], group=group)
    if obj["t"] == "delete":
        return Delete(obj["id"], obj["ts"], group=group)
    assert obj["t"] == "timer"
    return Timer(obj["seconds"], obj["ts"])


@pytest.mark.parametrize("v", VECTORS["rich_content"])
def test_rich_content(v: dict[str, Any]) -> None:
    _check_content(_rich(v["content"]), v)


@pytest.mark.parametrize("v", VECTORS["group_message"])
def test_group_message(v: dict[str, Any]) -> None:
    message = GroupMessage(v["group"], v["session"], bytes.fromhex(v["megolm_hex"]))
    assert encode_group_message(message).hex() == v["body_hex"]
    assert decode_group_message(bytes.fromhex(v["body_hex"])) == message


@pytest.mark.parametrize("v", VECTORS["group_key_signature"])
def test_group_key_signature(v: dict[str, Any]) -> None:
    device = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["device_seed_hex"]))
    payload = group_key_payload(v["group"], v["session"])
    assert payload.hex() == v["payload_hex"]
    assert b64encode(device.public_key().public_bytes_raw()) == v["device_ed25519"]
    assert b64encode(device.sign(payload)) == v["signature"]
    verify_ed25519(v["device_ed25519"], payload, v["signature"])


@pytest.mark.parametrize("v", VECTORS["group_state"])
def test_group_state(v: dict[str, Any]) -> None:
    s = v["state"]
    state = GroupState(
        name=s["name"],
        description=s["description"],
        avatar=s["avatar"],
        timer_seconds=s["timer"],
        settings=GroupSettings(
            members_can_edit=s["members_can_edit"], join_approval=s["join_approval"]
        ),
    )
    raw = state_to_json(state)
    assert raw == v["json"].encode("utf-8")
    assert len(pad_state(raw)) == v["padded_length"]
    key, nonce = bytes.fromhex(v["key_hex"]), bytes.fromhex(v["nonce_hex"])
    blob = seal_group_state_with(key, v["group"], v["revision"], v["epoch"], state, nonce)
    assert associated_data(v["group"], v["revision"], blob[:5]).hex() == v["aad_hex"]
    assert blob.hex() == v["blob_hex"]
    assert open_group_state(key, v["group"], v["revision"], blob) == state


@pytest.mark.parametrize("v", VECTORS["subkey"])
def test_subkey(v: dict[str, Any]) -> None:
    sealer = Sealer(bytes.fromhex(v["key_hex"]))
    assert sealer.subkey(v["label"]).hex() == v["subkey_hex"]


@pytest.mark.parametrize("v", VECTORS["safety_number"])
def test_safety_number(v: dict[str, Any]) -> None:
    local_key = MasterKey.from_private_bytes(bytes.fromhex(v["local_master_seed_hex"]))
    remote_key = MasterKey.from_private_bytes(bytes.fromhex(v["remote_master_seed_hex"]))
    assert local_key.public_b64 == v["local_master_public"]
    assert remote_key.public_b64 == v["remote_master_public"]
    local_id, remote_id = v["local_account_id"], v["remote_account_id"]
    local_hash = fingerprint_hash(
        account_stable_id(local_id), master_identity_key(v["local_master_public"])
    )
    remote_hash = fingerprint_hash(
        account_stable_id(remote_id), master_identity_key(v["remote_master_public"])
    )
    assert local_hash.hex() == v["local_hash_hex"]
    assert remote_hash.hex() == v["remote_hash_hex"]
    ours = safety_number(local_id, v["local_master_public"], remote_id, v["remote_master_public"])
    theirs = safety_number(remote_id, v["remote_master_public"], local_id, v["local_master_public"])
    assert ours.digits == theirs.digits == v["digits"]
    assert ours.display() == theirs.display() == v["display"]
    assert ours.qr_payload().hex() == v["local_qr_hex"]
    assert theirs.qr_payload().hex() == v["remote_qr_hex"]
    assert ours.compare(bytes.fromhex(v["remote_qr_hex"])) is Comparison.MATCH
    assert theirs.compare(bytes.fromhex(v["local_qr_hex"])) is Comparison.MATCH


@pytest.mark.parametrize("v", VECTORS["safety_number_libsignal"])
def test_safety_number_libsignal(v: dict[str, Any]) -> None:
    """libsignal's own published vectors: the algorithm is Signal's, byte for byte."""
    local = (v["local_id"].encode("ascii"), bytes.fromhex(v["local_key_hex"]))
    remote = (v["remote_id"].encode("ascii"), bytes.fromhex(v["remote_key_hex"]))
    options = {"version": v["version"], "iterations": v["iterations"]}
    ours = numeric_fingerprint(*local, *remote, **options)
    theirs = numeric_fingerprint(*remote, *local, **options)
    assert ours.digits == theirs.digits == v["digits"]
    assert ours.qr_payload().hex() == v["local_qr_hex"]
    assert theirs.qr_payload().hex() == v["remote_qr_hex"]
    assert ours.compare(theirs.qr_payload()) is Comparison.MATCH


@pytest.mark.parametrize("v", VECTORS["provisioning"])
def test_provisioning(v: dict[str, Any]) -> None:
    new_device = ProvisioningKeyPair.from_private_bytes(bytes.fromhex(v["new_device_private_hex"]))
    ephemeral = X25519PrivateKey.from_private_bytes(bytes.fromhex(v["ephemeral_private_hex"]))
    new_public = bytes.fromhex(v["new_device_public_hex"])
    ephemeral_public = bytes.fromhex(v["ephemeral_public_hex"])
    assert new_device.public_bytes == new_public
    assert ephemeral.public_key().public_bytes_raw() == ephemeral_public
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(new_public))
    assert shared.hex() == v["shared_secret_hex"]
    aes_key, mac_key = derive_keys(shared, new_public, ephemeral_public)
    assert (aes_key.hex(), mac_key.hex()) == (v["aes_key_hex"], v["mac_key_hex"])
    m = v["message"]
    message = ProvisionMessage(
        account_id=m["account_id"],
        master_seed=bytes.fromhex(m["master_seed_hex"]),
        phone=m["phone"],
        username=m["username"],
        provisioning_code=m["provisioning_code"],
        primary_device_id=m["primary_device_id"],
    )
    raw = provision_message_to_json(message)
    assert raw == v["json"].encode("ascii")
    padded = pad_plaintext(raw)
    assert len(padded) == v["padded_length"]
    envelope = encrypt_provision_with(padded, new_public, ephemeral, bytes.fromhex(v["iv_hex"]))
    assert envelope.hex() == v["envelope_hex"]
    assert new_device.decrypt(envelope) == message
    assert build_provisioning_uri(v["channel_id"], new_public) == v["uri"]
    parsed = parse_provisioning_uri(v["uri"])
    assert (parsed.channel_id, parsed.public_key) == (v["channel_id"], new_public)


def test_vector_file_is_not_empty() -> None:
    for section in (
        "device_binding",
        "one_time_key",
        "padding",
        "content",
        "rich_content",
        "subkey",
        "safety_number",
        "safety_number_libsignal",
        "provisioning",
        "group_key_signature",
        "group_state",
    ):
        assert VECTORS[section], section
