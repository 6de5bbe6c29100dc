"""Interop between the Python client's crypto (vodozemac, cryptography) and the browser
client's (libolm WebAssembly, WebCrypto) in both directions, live: each test drives the
TypeScript core in Node through tests/interop/web_peer.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from porch.crypto.attachment import decrypt_attachment, encrypt_attachment
from porch.crypto.content import (
    Attachment,
    Quote,
    Reaction,
    Sent,
    Text,
    Timer,
    content_to_json,
    decode_content,
    encode_content,
)
from porch.crypto.errors import DecryptError
from porch.crypto.group_message import GroupMessage, decode_group_message, encode_group_message
from porch.crypto.megolm import InboundGroupSession, OutboundGroupSession, group_key_payload
from porch.crypto.olm import OlmCiphertext, OlmMachine
from porch.crypto.signing import verify_one_time_key
from porch.protocol.codec import b64decode, b64encode
from tests.interop.web_peer import PeerError, WebPeer

PY = ("1b4e28ba-2fa1-11d2-883f-0016d3cca427", 1)
JS = ("b7f3c2a0-0000-4000-8000-00000000beef", 2)
GROUP = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"


@pytest.fixture(scope="module")
def peer() -> Iterator[WebPeer]:
    with WebPeer() as running:
        yield running


def text(body: str, **extra: object) -> Text:
    return Text(id="m-py", body=body, ts=1_700_000_000_000, **extra)  # type: ignore[arg-type]


def test_olm_python_starts_then_js_replies(peer: WebPeer) -> None:
    python = OlmMachine.create(os.urandom(32))
    js = peer.call("identity")
    otk = js["one_time_key"]
    # libolm's signature over the porch/otk/v1 payload verifies with the Python code.
    verify_one_time_key(js["ed25519"], otk["keyId"], otk["curve25519"], False, otk["signature"])
    python.create_outbound_session(JS, js["curve25519"], otk["curve25519"])

    first = python.encrypt(JS, encode_content(text("hello from vodozemac 👋")))
    assert first.kind == 0
    got = peer.call(
        "olm_decrypt", peer=PY, identity=python.curve25519, kind=0, body=b64encode(first.body)
    )
    assert decode_content(b64decode(got["plaintext"])) == text("hello from vodozemac 👋")

    reply = encode_content(text("hello from libolm", reply=Quote("m-py", PY[0], "hello")))
    sent = peer.call("olm_encrypt", peer=PY, plaintext=b64encode(reply))
    received = OlmCiphertext(sent["kind"], b64decode(sent["body"]))
    answer = python.decrypt(JS, js["curve25519"], received)
    assert answer == reply  # the padding (0x80 and NULs) survives byte for byte

    # The session is confirmed both ways: later messages are normal messages.
    later = python.encrypt(JS, encode_content(text("third")))
    assert later.kind == 1
    got = peer.call(
        "olm_decrypt", peer=PY, identity=python.curve25519, kind=1, body=b64encode(later.body)
    )
    assert decode_content(b64decode(got["plaintext"])) == text("third")


def test_olm_js_starts_then_python_replies(peer: WebPeer) -> None:
    python = OlmMachine.create(os.urandom(32))
    js = peer.call("identity")
    [otk] = python.generate_one_time_keys(1)
    peer.call("olm_outbound", peer=PY, identity=python.curve25519, one_time_key=otk.curve25519)
    content = encode_content(Reaction("m-1", PY[0], "❤️", 5))
    sent = peer.call("olm_encrypt", peer=PY, plaintext=b64encode(content))
    assert sent["kind"] == 0
    received = OlmCiphertext(sent["kind"], b64decode(sent["body"]))
    assert python.decrypt(JS, js["curve25519"], received) == content

    back = python.encrypt(JS, encode_content(Timer(300, 6)))
    fields = {"kind": back.kind, "body": b64encode(back.body)}
    got = peer.call("olm_decrypt", peer=PY, identity=python.curve25519, **fields)
    assert decode_content(b64decode(got["plaintext"])) == Timer(300, 6)


def test_olm_tampered_message_is_refused_in_js(peer: WebPeer) -> None:
    python = OlmMachine.create(os.urandom(32))
    js = peer.call("identity")
    python.create_outbound_session(JS, js["curve25519"], js["one_time_key"]["curve25519"])
    body = bytearray(python.encrypt(JS, encode_content(text("x"))).body)
    body[-1] ^= 1
    with pytest.raises(PeerError) as refused:
        peer.call("olm_decrypt", peer=PY, identity=python.curve25519, kind=0, body=b64encode(body))
    assert refused.value.code == "decrypt_failed"


def test_megolm_python_session_decrypts_in_js(peer: WebPeer) -> None:
    sender = OlmMachine.create(os.urandom(32))
    outbound = OutboundGroupSession.create(os.urandom(32), 1_700_000_000_000)
    sig = sender.sign(group_key_payload(GROUP, outbound.session_id))
    peer.call(
        "megolm_inbound",
        group=GROUP,
        session=outbound.session_id,
        key=outbound.session_key(),
        sig=sig,
        sender_ed25519=sender.ed25519,
    )
    for index, body in enumerate(["one", "two 🎉"]):
        plaintext = encode_content(text(body, group=GROUP))
        message = GroupMessage(GROUP, outbound.session_id, outbound.encrypt(plaintext))
        got = peer.call("megolm_decrypt", body=b64encode(encode_group_message(message)))
        assert (b64decode(got["plaintext"]), got["index"]) == (plaintext, index)


def test_megolm_js_session_decrypts_in_python(peer: WebPeer) -> None:
    js = peer.call("identity")
    shared = peer.call("megolm_outbound", group=GROUP)
    inbound = InboundGroupSession.from_group_key(
        group_id=GROUP,
        session_id=shared["session"],
        session_key=shared["key"],
        signature=shared["sig"],  # libolm's Ed25519 signature over group_key_payload
        sender_ed25519=js["ed25519"],
        pickle_key=os.urandom(32),
    )
    plaintexts = [encode_content(text(f"from the browser {i}", group=GROUP)) for i in range(3)]
    for index, plaintext in enumerate(plaintexts):
        sent = peer.call("megolm_encrypt", plaintext=b64encode(plaintext))
        message = decode_group_message(b64decode(sent["body"]))
        assert (message.group_id, message.session_id) == (GROUP, shared["session"])
        result = inbound.decrypt(message.ciphertext)
        assert (result.plaintext, result.message_index) == (plaintext, index)
        assert not result.duplicate
    with pytest.raises(DecryptError):
        inbound.decrypt(message.ciphertext[:-1] + bytes([message.ciphertext[-1] ^ 1]))


@pytest.mark.parametrize("size", [0, 1, 541, 100_003])
def test_attachment_python_to_js(peer: WebPeer, size: int) -> None:
    data = os.urandom(size)
    blob, key, digest = encrypt_attachment(data)
    fields = {"blob": b64encode(blob), "key": b64encode(key), "digest": b64encode(digest)}
    got = peer.call("attachment_decrypt", size=size, **fields)
    assert b64decode(got["data"]) == data
    tampered = bytearray(blob)
    tampered[20] ^= 1
    with pytest.raises(PeerError) as refused:
        peer.call("attachment_decrypt", size=size, **{**fields, "blob": b64encode(tampered)})
    assert refused.value.code == "attachment_tampered"


@pytest.mark.parametrize("size", [0, 15, 16, 70_001])
def test_attachment_js_to_python(peer: WebPeer, size: int) -> None:
    data = os.urandom(size)
    got = peer.call("attachment_encrypt", data=b64encode(data))
    blob, key, digest = (b64decode(got[k]) for k in ("blob", "key", "digest"))
    assert decrypt_attachment(blob, key, digest, size) == data


PYTHON_CONTENTS = [
    text('h\u00e9llo 👋 "q" \\ /\n\t\x01\x7f\u2028'),
    text(
        "",
        group=GROUP,
        attachments=(
            Attachment(
                id="AAECAwQFBgcICQoLDA0ODw",
                key=bytes(range(64)),
                digest=bytes(32),
                size=48213,
                content_type="image/jpeg",
                name="b\u00e9ach.jpg",
                width=1024,
                height=768,
                thumbnail=b"\xff\xd8\xff\xd9",
                blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj",
            ),
        ),
        reply=Quote("m-0", PY[0], "🌊" * 200),
        forwarded=True,
        expires=86_400,
    ),
    Sent(to=JS[0], content=Reaction("m-1", PY[0], "", 7)),
]


@pytest.mark.parametrize("content", PYTHON_CONTENTS, ids=["text", "attachment", "sent"])
def test_content_python_bytes_reencode_identically_in_js(peer: WebPeer, content: Text) -> None:
    padded = encode_content(content)
    got = peer.call("content_reencode", padded=b64encode(padded))
    assert b64decode(got["json"]) == content_to_json(content)
    assert b64decode(got["padded"]) == padded


def test_content_encoded_in_js_is_python_bytes(peer: WebPeer) -> None:
    samples = [b64decode(p) for p in peer.call("content_samples")["padded"]]
    assert len(samples) == 11
    for padded in samples:
        decoded = decode_content(padded)
        # Python decodes the TypeScript bytes and encodes them back to exactly those bytes.
        assert encode_content(decoded) == padded  # type: ignore[arg-type]
