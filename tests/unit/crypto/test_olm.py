"""OlmMachine: session setup, message exchange, races, persistence and failures."""

from __future__ import annotations

import json

import pytest

from porch.crypto.errors import CryptoError, DecryptError
from porch.crypto.olm import MAX_SESSIONS_PER_PEER, OlmCiphertext, OlmMachine, OneTimeKey
from porch.crypto.signing import verify_one_time_key

ALICE = ("alice", 1)
BOB = ("bob", 1)
KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


def claim(owner: OlmMachine) -> OneTimeKey:
    """What a peer does with a key claimed from the directory: verify it first."""
    otk = owner.generate_one_time_keys(1)[0]
    verify_one_time_key(owner.ed25519, otk.key_id, otk.curve25519, otk.fallback, otk.signature)
    return otk


def connect(sender: OlmMachine, receiver: OlmMachine, receiver_id: tuple[str, int]) -> None:
    sender.create_outbound_session(receiver_id, receiver.curve25519, claim(receiver).curve25519)


def send(
    src: OlmMachine, src_id: tuple[str, int], dst: OlmMachine, dst_id: tuple[str, int], text: bytes
) -> OlmCiphertext:
    ct = src.encrypt(dst_id, text)
    assert dst.decrypt(src_id, src.curve25519, ct) == text
    return ct


def session_count(machine: OlmMachine, peer: tuple[str, int]) -> int:
    return len(json.loads(machine.pickle_sessions(peer)))


@pytest.fixture
def pair() -> tuple[OlmMachine, OlmMachine]:
    return OlmMachine.create(KEY_A), OlmMachine.create(KEY_B)


def test_one_time_keys_are_signed_and_published(pair: tuple[OlmMachine, OlmMachine]) -> None:
    _, bob = pair
    keys = bob.generate_one_time_keys(3)
    assert len(keys) == 3
    assert len({k.key_id for k in keys}) == 3
    for key in keys:
        assert not key.fallback
        verify_one_time_key(bob.ed25519, key.key_id, key.curve25519, False, key.signature)
    # Marked published: the next batch contains only new keys.
    assert not {k.key_id for k in bob.generate_one_time_keys(2)} & {k.key_id for k in keys}
    assert bob.generate_one_time_keys(0) == []
    fallback = bob.generate_fallback_key()
    assert fallback.fallback
    verify_one_time_key(bob.ed25519, fallback.key_id, fallback.curve25519, True, fallback.signature)
    with pytest.raises(CryptoError):
        verify_one_time_key(
            bob.ed25519, fallback.key_id, fallback.curve25519, False, fallback.signature
        )
    assert bob.max_one_time_keys >= 50


def test_conversation_both_ways(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    assert not alice.has_session(BOB)
    connect(alice, bob, BOB)
    assert alice.has_session(BOB)
    first = send(alice, ALICE, bob, BOB, b"hi bob")
    assert first.kind == 0
    assert bob.has_session(ALICE)
    reply = send(bob, BOB, alice, ALICE, b"hi alice")
    assert reply.kind == 1
    for i in range(5):
        assert send(alice, ALICE, bob, BOB, b"a%d" % i).kind == 1
        assert send(bob, BOB, alice, ALICE, b"b%d" % i).kind == 1
    for i in range(3):  # several in a row from one side
        send(bob, BOB, alice, ALICE, b"burst%d" % i)


def test_fallback_key_session(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    fallback = bob.generate_fallback_key()
    alice.create_outbound_session(BOB, bob.curve25519, fallback.curve25519)
    send(alice, ALICE, bob, BOB, b"via fallback")
    send(bob, BOB, alice, ALICE, b"ok")


def test_several_pre_key_messages_before_reply(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    connect(alice, bob, BOB)
    cts = [alice.encrypt(BOB, b"m%d" % i) for i in range(4)]
    assert all(ct.kind == 0 for ct in cts)
    # Out of order: the later message creates the session, the earlier ones still decrypt.
    order = [2, 0, 3, 1]
    for i in order:
        assert bob.decrypt(ALICE, alice.curve25519, cts[i]) == b"m%d" % i
    assert session_count(bob, ALICE) == 1
    send(bob, BOB, alice, ALICE, b"reply")
    assert send(alice, ALICE, bob, BOB, b"after").kind == 1


def test_simultaneous_session_creation_converges(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    connect(alice, bob, BOB)
    connect(bob, alice, ALICE)
    from_alice = alice.encrypt(BOB, b"hello from alice")
    from_bob = bob.encrypt(ALICE, b"hello from bob")
    assert from_alice.kind == 0 and from_bob.kind == 0
    assert alice.decrypt(BOB, bob.curve25519, from_bob) == b"hello from bob"
    assert bob.decrypt(ALICE, alice.curve25519, from_alice) == b"hello from alice"
    assert session_count(alice, BOB) == 2
    assert session_count(bob, ALICE) == 2
    # Each side now prefers the session the other created; the first message through settles
    # both on one pair and everything afterwards is a normal message.
    send(alice, ALICE, bob, BOB, b"one")
    send(bob, BOB, alice, ALICE, b"two")
    for i in range(3):
        assert send(alice, ALICE, bob, BOB, b"x%d" % i).kind == 1
        assert send(bob, BOB, alice, ALICE, b"y%d" % i).kind == 1


def test_pickle_round_trip_mid_conversation(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    connect(alice, bob, BOB)
    send(alice, ALICE, bob, BOB, b"one")
    send(bob, BOB, alice, ALICE, b"two")
    in_flight = alice.encrypt(BOB, b"sent before bob restarts")

    restored_bob = OlmMachine.from_pickle(bob.pickle_account(), KEY_B)
    restored_bob.load_sessions(ALICE, bob.pickle_sessions(ALICE))
    assert restored_bob.curve25519 == bob.curve25519
    assert restored_bob.ed25519 == bob.ed25519
    assert not restored_bob.dirty_peers() and not restored_bob.account_dirty

    assert restored_bob.decrypt(ALICE, alice.curve25519, in_flight) == b"sent before bob restarts"
    restored_alice = OlmMachine.from_pickle(alice.pickle_account(), KEY_A)
    restored_alice.load_sessions(BOB, alice.pickle_sessions(BOB))
    send(restored_bob, BOB, restored_alice, ALICE, b"three")
    send(restored_alice, ALICE, restored_bob, BOB, b"four")


def test_pickled_account_keeps_one_time_keys(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    otk = claim(bob)
    restored_bob = OlmMachine.from_pickle(bob.pickle_account(), KEY_B)
    alice.create_outbound_session(BOB, bob.curve25519, otk.curve25519)
    send(alice, ALICE, restored_bob, BOB, b"to restored bob")


def test_wrong_pickle_key(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    connect(alice, bob, BOB)
    with pytest.raises(CryptoError) as info:
        OlmMachine.from_pickle(alice.pickle_account(), KEY_B)
    assert info.value.code == "bad_key"
    with pytest.raises(CryptoError):
        OlmMachine.create(KEY_B).load_sessions(BOB, alice.pickle_sessions(BOB))
    for bad in ["not json", "{}", "[1]", '["garbage"]']:
        with pytest.raises(CryptoError):
            alice.load_sessions(BOB, bad)
    with pytest.raises(CryptoError):
        OlmMachine.create(b"short")


def test_replay_fails_and_session_keeps_working(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    connect(alice, bob, BOB)
    pre_key = send(alice, ALICE, bob, BOB, b"first")
    send(bob, BOB, alice, ALICE, b"reply")
    normal = send(alice, ALICE, bob, BOB, b"second")
    with pytest.raises(DecryptError) as info:
        bob.decrypt(ALICE, alice.curve25519, normal)
    assert info.value.code == "decrypt_failed"
    # A replayed pre-key message must not spawn a second session from a used one-time key.
    with pytest.raises(DecryptError):
        bob.decrypt(ALICE, alice.curve25519, pre_key)
    assert session_count(bob, ALICE) == 1
    send(alice, ALICE, bob, BOB, b"third")
    send(bob, BOB, alice, ALICE, b"fourth")


def _flip(ct: OlmCiphertext, index: int) -> OlmCiphertext:
    body = bytearray(ct.body)
    body[index] ^= 0x01
    return OlmCiphertext(kind=ct.kind, body=bytes(body))


def test_tampered_pre_key_message_leaves_state_unchanged(
    pair: tuple[OlmMachine, OlmMachine],
) -> None:
    alice, bob = pair
    connect(alice, bob, BOB)
    ct = alice.encrypt(BOB, b"secret")
    bob.clear_dirty()
    for index in (-1, len(ct.body) // 2, len(ct.body) - 9):
        with pytest.raises(DecryptError):
            bob.decrypt(ALICE, alice.curve25519, _flip(ct, index))
    with pytest.raises(DecryptError):  # wrong claimed identity key
        bob.decrypt(ALICE, bob.curve25519, ct)
    assert not bob.has_session(ALICE)
    assert not bob.account_dirty and not bob.dirty_peers()
    # The one-time key was not consumed by the failures.
    assert bob.decrypt(ALICE, alice.curve25519, ct) == b"secret"


def test_tampered_normal_message(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    connect(alice, bob, BOB)
    send(alice, ALICE, bob, BOB, b"first")
    send(bob, BOB, alice, ALICE, b"reply")
    ct = alice.encrypt(BOB, b"second")
    for index in (-1, len(ct.body) // 2):
        with pytest.raises(DecryptError):
            bob.decrypt(ALICE, alice.curve25519, _flip(ct, index))
    assert bob.decrypt(ALICE, alice.curve25519, ct) == b"second"


@pytest.mark.parametrize(
    "ct",
    [
        OlmCiphertext(kind=1, body=b"garbage"),
        OlmCiphertext(kind=0, body=b"garbage"),
        OlmCiphertext(kind=0, body=b""),
        OlmCiphertext(kind=7, body=b"\x03"),
    ],
)
def test_garbage_ciphertext(pair: tuple[OlmMachine, OlmMachine], ct: OlmCiphertext) -> None:
    alice, bob = pair
    with pytest.raises(DecryptError):
        bob.decrypt(ALICE, alice.curve25519, ct)


def test_normal_message_without_session(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    connect(alice, bob, BOB)
    send(alice, ALICE, bob, BOB, b"first")
    normal = bob.encrypt(ALICE, b"reply")
    with pytest.raises(DecryptError):
        OlmMachine.create(KEY_A).decrypt(BOB, bob.curve25519, normal)


def test_encrypt_without_session(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, _ = pair
    with pytest.raises(CryptoError) as info:
        alice.encrypt(BOB, b"x")
    assert info.value.code == "bad_key"


def test_create_outbound_session_rejects_bad_keys(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    with pytest.raises(CryptoError) as info:
        alice.create_outbound_session(BOB, "bad!", claim(bob).curve25519)
    assert info.value.code == "bad_key"
    assert not alice.has_session(BOB)


def test_sessions_capped_per_peer(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    for _ in range(MAX_SESSIONS_PER_PEER + 2):
        connect(alice, bob, BOB)
    assert session_count(alice, BOB) == MAX_SESSIONS_PER_PEER
    # The newest (preferred) session is kept and works.
    send(alice, ALICE, bob, BOB, b"latest")


def test_dirty_tracking(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    assert alice.account_dirty  # never persisted yet
    alice.clear_dirty()
    assert not alice.account_dirty and not alice.dirty_peers()
    connect(alice, bob, BOB)
    assert alice.dirty_peers() == {BOB}
    assert not alice.account_dirty  # outbound creation does not change the account
    bob.clear_dirty()
    ct = alice.encrypt(BOB, b"x")
    bob.decrypt(ALICE, alice.curve25519, ct)
    assert bob.account_dirty  # the one-time key was consumed
    assert bob.dirty_peers() == {ALICE}
    bob.clear_dirty()
    bob.encrypt(ALICE, b"y")
    assert bob.dirty_peers() == {ALICE} and not bob.account_dirty
    bob.generate_one_time_keys(1)
    assert bob.account_dirty


def test_forget_peer(pair: tuple[OlmMachine, OlmMachine]) -> None:
    alice, bob = pair
    connect(alice, bob, BOB)
    assert alice.peers() == {BOB}
    alice.clear_dirty()
    alice.forget_peer(BOB)
    assert not alice.has_session(BOB)
    assert alice.dirty_peers() == {BOB}
    assert alice.pickle_sessions(BOB) == "[]"
    assert alice.peers() == set()
    alice.load_sessions(BOB, "[]")
    assert not alice.has_session(BOB)
