"""Megolm sessions: sharing over signed group_key contents, late joiners, replays, rotation,
pickles."""

from __future__ import annotations

import pytest

from porch.crypto.content import GroupKey, decode_content, encode_content
from porch.crypto.errors import (
    BAD_KEY,
    DECRYPT_FAILED,
    REPLAYED,
    UNKNOWN_INDEX,
    CryptoError,
    DecryptError,
    SignatureError,
)
from porch.crypto.megolm import (
    MAX_MESSAGE_BYTES,
    MAX_TRACKED_INDICES,
    InboundGroupSession,
    OutboundGroupSession,
    RotationPolicy,
    group_key_payload,
    must_rotate,
    rotation_reason,
)
from porch.crypto.olm import OlmMachine

GROUP = "g-7f3a"
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
T0 = 1_700_000_000_000
WEEK = 7 * 24 * 3600 * 1000


def share(sender: OlmMachine, outbound: OutboundGroupSession, group: str = GROUP) -> GroupKey:
    """The group_key content a device sends (over Olm) to each member device."""
    sig = sender.sign(group_key_payload(group, outbound.session_id))
    content = GroupKey(
        group=group, session=outbound.session_id, key=outbound.session_key(), sig=sig
    )
    decoded = decode_content(encode_content(content))  # what the recipient parses
    assert decoded == content
    return content


def receive(content: GroupKey, sender: OlmMachine) -> InboundGroupSession:
    return InboundGroupSession.from_group_key(
        group_id=content.group,
        session_id=content.session,
        session_key=content.key,
        signature=content.sig,
        sender_ed25519=sender.ed25519,
        pickle_key=KEY,
    )


@pytest.fixture
def alice() -> OlmMachine:
    return OlmMachine.create(KEY)


def test_three_member_devices_read_the_same_ciphertext(alice: OlmMachine) -> None:
    outbound = OutboundGroupSession.create(KEY, T0)
    key = share(alice, outbound)
    members = [receive(key, alice) for _ in range(3)]
    for n in range(3):
        ciphertext = outbound.encrypt(f"message {n}".encode())
        for inbound in members:
            result = inbound.decrypt(ciphertext)
            assert result.plaintext == f"message {n}".encode()
            assert result.message_index == n
            assert not result.duplicate
    assert outbound.message_index == 3
    assert {m.session_id for m in members} == {outbound.session_id}


def test_late_joiner_reads_only_from_the_index_it_was_given(alice: OlmMachine) -> None:
    outbound = OutboundGroupSession.create(KEY, T0)
    early = receive(share(alice, outbound), alice)
    before = [outbound.encrypt(b"before %d" % i) for i in range(3)]
    late = receive(share(alice, outbound), alice)  # joins now: key at index 3
    assert late.first_known_index == 3
    after = outbound.encrypt(b"after")
    for old in before:
        with pytest.raises(DecryptError) as err:
            late.decrypt(old)
        assert err.value.code == UNKNOWN_INDEX
    assert late.decrypt(after).plaintext == b"after"
    assert early.decrypt(before[0]).plaintext == b"before 0"


def test_exported_key_at_a_later_index_cannot_reach_back(alice: OlmMachine) -> None:
    outbound = OutboundGroupSession.create(KEY, T0)
    holder = receive(share(alice, outbound), alice)
    messages = [outbound.encrypt(b"m%d" % i) for i in range(5)]
    exported = holder.export_at(2)
    assert exported is not None
    imported = InboundGroupSession.from_exported(exported, KEY)
    assert imported.first_known_index == 2
    assert imported.export_at(1) is None
    with pytest.raises(DecryptError) as err:
        imported.decrypt(messages[1])
    assert err.value.code == UNKNOWN_INDEX
    assert [imported.decrypt(m).plaintext for m in messages[2:]] == [b"m2", b"m3", b"m4"]


def test_a_different_ciphertext_at_a_used_index_is_a_replay(alice: OlmMachine) -> None:
    outbound = OutboundGroupSession.create(KEY, T0)
    inbound = receive(share(alice, outbound), alice)
    saved = outbound.pickle()
    first = outbound.encrypt(b"pay bob 10")
    # The same ratchet state again yields a second, validly signed ciphertext at index 0.
    second = OutboundGroupSession.from_pickle(saved, KEY).encrypt(b"pay bob 1000")
    assert first != second
    assert inbound.decrypt(first).plaintext == b"pay bob 10"
    again = inbound.decrypt(first)  # at-least-once delivery: a retransmission is fine
    assert again.duplicate and again.plaintext == b"pay bob 10"
    with pytest.raises(DecryptError) as err:
        inbound.decrypt(second)
    assert err.value.code == REPLAYED
    # The replay record survives a pickle round trip.
    restored = InboundGroupSession.from_pickle(inbound.pickle(), KEY)
    with pytest.raises(DecryptError) as err:
        restored.decrypt(second)
    assert err.value.code == REPLAYED


def test_tampered_and_foreign_messages_are_refused(alice: OlmMachine) -> None:
    outbound = OutboundGroupSession.create(KEY, T0)
    inbound = receive(share(alice, outbound), alice)
    ciphertext = bytearray(outbound.encrypt(b"hello"))
    ciphertext[-70] ^= 1  # inside the MAC / ciphertext, before the signature
    for bad in (bytes(ciphertext), b"", b"\x03junk", b"\x03" * (MAX_MESSAGE_BYTES + 1)):
        with pytest.raises(DecryptError) as err:
            inbound.decrypt(bad)
        assert err.value.code == DECRYPT_FAILED
    other = OutboundGroupSession.create(KEY, T0)
    with pytest.raises(DecryptError):
        inbound.decrypt(other.encrypt(b"not yours"))
    # A failure records nothing: the genuine message still decrypts as new.
    ciphertext[-70] ^= 1
    assert not inbound.decrypt(bytes(ciphertext)).duplicate


def test_group_key_must_be_signed_by_the_sending_device_for_this_group(
    alice: OlmMachine,
) -> None:
    mallory = OlmMachine.create(OTHER_KEY)
    outbound = OutboundGroupSession.create(KEY, T0)
    content = share(alice, outbound)
    # Mallory re-shares Alice's session as her own: the signature is not hers.
    with pytest.raises(SignatureError):
        receive(content, mallory)
    # The same signature does not bind the session to another group.
    with pytest.raises(SignatureError):
        receive(GroupKey("g-other", content.session, content.key, content.sig), alice)
    # A key of another session under a genuine signature is refused.
    other = OutboundGroupSession.create(KEY, T0)
    with pytest.raises(CryptoError) as err:
        receive(GroupKey(GROUP, content.session, other.session_key(), content.sig), alice)
    assert err.value.code == BAD_KEY


def test_pickles_round_trip_and_refuse_a_wrong_key(alice: OlmMachine) -> None:
    outbound = OutboundGroupSession.create(KEY, T0)
    inbound = receive(share(alice, outbound), alice)
    inbound.decrypt(outbound.encrypt(b"one"))
    out2 = OutboundGroupSession.from_pickle(outbound.pickle(), KEY)
    in2 = InboundGroupSession.from_pickle(inbound.pickle(), KEY)
    assert (out2.session_id, out2.message_index, out2.created_at_ms) == (
        outbound.session_id,
        1,
        T0,
    )
    assert in2.decrypt(out2.encrypt(b"two")).plaintext == b"two"
    for loader, pickled in (
        (OutboundGroupSession.from_pickle, outbound.pickle()),
        (InboundGroupSession.from_pickle, inbound.pickle()),
    ):
        with pytest.raises(CryptoError) as err:
            loader(pickled, OTHER_KEY)
        assert err.value.code == BAD_KEY
    # An inbound pickle is not accepted as an outbound one (and the reverse).
    with pytest.raises(CryptoError):
        OutboundGroupSession.from_pickle(inbound.pickle(), KEY)
    with pytest.raises(CryptoError):
        InboundGroupSession.from_pickle("not base64!", KEY)
    with pytest.raises(CryptoError):
        OutboundGroupSession.create(b"short", T0)
    for bad_time in (-1, 2**53, True):
        with pytest.raises(ValueError):
            OutboundGroupSession.create(KEY, bad_time)


def test_the_replay_record_is_bounded(alice: OlmMachine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("porch.crypto.megolm.MAX_TRACKED_INDICES", 2)
    outbound = OutboundGroupSession.create(KEY, T0)
    inbound = receive(share(alice, outbound), alice)
    first = outbound.encrypt(b"0")
    inbound.decrypt(first)
    inbound.decrypt(outbound.encrypt(b"1"))
    with pytest.raises(DecryptError):
        inbound.decrypt(outbound.encrypt(b"2"))
    assert inbound.decrypt(first).duplicate  # known indices still answer


@pytest.mark.parametrize(
    ("sent", "age_ms", "removed", "reason"),
    [
        (0, 0, False, None),
        (99, WEEK - 1, False, None),
        (100, 0, False, "max_messages"),
        (0, WEEK, False, "max_age"),
        (5, 1000, True, "member_removed"),
        (0, -1, False, "clock"),
    ],
)
def test_rotation_policy(sent: int, age_ms: int, removed: bool, reason: str | None) -> None:
    policy = RotationPolicy()
    args = {"messages_sent": sent, "created_at_ms": T0, "now_ms": T0 + age_ms}
    assert rotation_reason(policy, **args, member_removed=removed) == reason
    assert must_rotate(policy, **args, member_removed=removed) is (reason is not None)


def test_rotation_policy_is_configurable_and_bounded() -> None:
    policy = RotationPolicy(max_messages=3, max_age_ms=3_600_000)
    outbound = OutboundGroupSession.create(KEY, T0)
    for _ in range(3):
        assert not outbound.must_rotate(policy, T0 + 1, member_removed=False)
        outbound.encrypt(b"x")
    assert outbound.must_rotate(policy, T0 + 1, member_removed=False)
    assert outbound.must_rotate(RotationPolicy(), T0 + 1, member_removed=True)
    for bad in ({"max_messages": 0}, {"max_messages": MAX_TRACKED_INDICES + 1}):
        with pytest.raises(ValueError):
            RotationPolicy(**bad)
    with pytest.raises(ValueError):
        RotationPolicy(max_age_ms=0)
