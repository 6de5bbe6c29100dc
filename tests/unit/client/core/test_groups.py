"""GroupCrypto with three accounts of two devices each: real Megolm, real stores, no server.

The group_key shares would travel over Olm; here each is handed to the recipient's
GroupCrypto as the receiver would after decrypting it (Olm itself is tested elsewhere), with
the sender the Olm message came from.
"""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass

import pytest

from porch.client.core.groups import GroupCrypto, GroupSendPlan
from porch.client.store import PeerDeviceRow
from porch.crypto.content import (
    GroupKey,
    GroupStateKey,
    GroupUpdate,
    Receipt,
    Text,
    decode_content,
    encode_content,
)
from porch.crypto.errors import CryptoError, DecryptError, SignatureError
from porch.crypto.megolm import RotationPolicy
from porch.protocol.codec import b64decode, b64encode
from tests.unit.client.core.conftest import Peer, PeerFactory

NOW = 1_700_000_000_000
GROUP = str(uuid.uuid4())
_ids = itertools.count(1)


@dataclass
class Member:
    peer: Peer
    crypto: GroupCrypto

    @property
    def who(self) -> tuple[str, int]:
        return (self.peer.account_id, self.peer.device_id)

    def row(self) -> PeerDeviceRow:
        p = self.peer
        return PeerDeviceRow(
            p.account_id, p.device_id, p.registration_id, p.olm.curve25519, p.olm.ed25519
        )


def _text(body: str, group: str | None = GROUP) -> bytes:
    return encode_content(Text(f"t{next(_ids)}", body, NOW, group=group))


@pytest.fixture
def members(make_peer: PeerFactory) -> list[Member]:
    """Accounts A, B, C with devices 1 and 2 each; every device knows every device's keys."""
    peers = []
    for _ in range(3):
        first = make_peer()
        peers += [first, make_peer(of=first, device_id=2)]
    policy = RotationPolicy(max_messages=5)
    out = [Member(p, GroupCrypto(p.core.state, os.urandom(32), policy)) for p in peers]
    for m in out:
        for account in {p.account_id for p in peers}:
            rows = [o.row() for o in out if o.peer.account_id == account]
            m.peer.store.put_peer_devices(account, rows, replace=True)
    return out


def send(
    sender: Member,
    to: list[Member],
    content: bytes,
    now: int = NOW,
    deliver_keys: bool = True,
    group: str = GROUP,
) -> tuple[GroupSendPlan, bytes]:
    """One group send: prepare over ``to``'s devices, deliver the shares, encrypt."""
    plan = sender.crypto.prepare(group, [m.row() for m in to], now)
    by_device = {m.who: m for m in to}
    for share in plan.shares:
        key = decode_content(share.content)
        assert isinstance(key, GroupKey)
        if deliver_keys:
            by_device[(share.account_id, share.device_id)].crypto.receive_key(*sender.who, key)
    sender.crypto.mark_shared(
        group, plan.session_id, [(s.account_id, s.device_id) for s in plan.shares]
    )
    return plan, sender.crypto.encrypt(group, content)


def test_every_device_decrypts_every_other_devices_messages_exactly_once(
    members: list[Member],
) -> None:
    for sender in members:
        content = _text(f"from {sender.who}")
        plan, body = send(sender, members, content)
        # This account's other device gets the key too; the sending device never does.
        assert sender.who not in {(s.account_id, s.device_id) for s in plan.shares}
        for other in members:
            if other is sender:
                continue
            got = other.crypto.decrypt(*sender.who, body)
            assert (got.group_id, got.plaintext, got.duplicate) == (GROUP, content, False)
            assert isinstance(got.content, Text) and got.content.group == GROUP
            again = other.crypto.decrypt(*sender.who, body)  # a redelivery: shown once
            assert again.duplicate is True
            other.crypto.save()


def test_shares_go_only_to_devices_that_lack_the_session(members: list[Member]) -> None:
    a = members[0]
    first, _ = send(a, members, _text("one"))
    assert len(first.shares) == 5 and first.rotated == "new"
    second, _ = send(a, members, _text("two"))
    assert second.shares == () and second.rotated is None
    assert second.session_id == first.session_id


def test_a_removed_member_cannot_decrypt_after_rotation(members: list[Member]) -> None:
    a, c1, c2 = members[0], members[4], members[5]
    first, body = send(a, members, _text("before"))
    assert c1.crypto.decrypt(*a.who, body).duplicate is False
    a.crypto.member_removed(GROUP)
    remaining = members[:4]
    plan, body = send(a, remaining, _text("after"))
    assert plan.rotated == "member_removed" and plan.session_id != first.session_id
    assert {s.account_id for s in plan.shares} == {m.peer.account_id for m in members[:4]}
    for c in (c1, c2):
        with pytest.raises(DecryptError) as err:
            c.crypto.decrypt(*a.who, body)
        assert err.value.code == "unknown_session"
    for m in members[1:4]:
        got = m.crypto.decrypt(*a.who, body)
        assert isinstance(got.content, Text) and got.content.body == "after"


def test_a_device_that_holds_the_key_and_is_gone_rotates_by_itself(members: list[Member]) -> None:
    a = members[0]
    first, _ = send(a, members, _text("one"))
    plan, body = send(a, members[:5], _text("two"))  # C's device 2 was removed
    assert plan.rotated == "member_removed" and plan.session_id != first.session_id
    with pytest.raises(DecryptError):
        members[5].crypto.decrypt(*a.who, body)


def test_a_late_joiner_cannot_decrypt_what_came_before(members: list[Member]) -> None:
    a, c1 = members[0], members[4]
    _, early = send(a, members[:4], _text("before C"))
    plan, late = send(a, members, _text("after C"))
    assert plan.rotated is None  # joining does not rotate
    assert {(s.account_id, s.device_id) for s in plan.shares} == {c1.who, members[5].who}
    assert c1.crypto.decrypt(*a.who, late).duplicate is False
    with pytest.raises(DecryptError) as err:
        c1.crypto.decrypt(*a.who, early)
    assert err.value.code == "unknown_index"


def test_a_session_is_accepted_only_from_its_device_and_group(members: list[Member]) -> None:
    a, b1 = members[0], members[2]
    _, body = send(a, members, _text("hi"))
    with pytest.raises(DecryptError) as err:  # the same body restamped as from A's device 2
        b1.crypto.decrypt(a.peer.account_id, 2, body)
    assert err.value.code == "decrypt_failed"
    other_group = str(uuid.uuid4())
    _, elsewhere = send(a, members, _text("hi", group=other_group), group=other_group)
    assert b1.crypto.decrypt(*a.who, elsewhere).group_id == other_group
    # A text that names another group than the session it came in is refused.
    _, wrong = send(a, members, _text("hi", group=other_group))
    with pytest.raises(DecryptError):
        b1.crypto.decrypt(*a.who, wrong)
    _, untagged = send(a, members, _text("hi", group=None))
    with pytest.raises(DecryptError):
        b1.crypto.decrypt(*a.who, untagged)
    update = encode_content(GroupUpdate(GROUP, 3, "add", (members[4].peer.account_id,)))
    _, told = send(a, members, update)
    assert b1.crypto.decrypt(*a.who, told).content == decode_content(update)
    _, receipt = send(a, members, encode_content(Receipt("read", ("t1",))))
    assert isinstance(b1.crypto.decrypt(*a.who, receipt).content, Receipt)


def test_a_key_share_must_be_signed_by_the_device_it_came_from(members: list[Member]) -> None:
    a, b1 = members[0], members[2]
    plan = a.crypto.prepare(GROUP, [m.row() for m in members], NOW)
    key = decode_content(plan.shares[0].content)
    assert isinstance(key, GroupKey)
    with pytest.raises(SignatureError):  # as if A's device 2 had sent it
        b1.crypto.receive_key(a.peer.account_id, 2, key)
    with pytest.raises(SignatureError):  # bound to the group
        b1.crypto.receive_key(*a.who, GroupKey(str(uuid.uuid4()), key.session, key.key, key.sig))
    with pytest.raises(SignatureError):  # an unknown device
        b1.crypto.receive_key(a.peer.account_id, 9, key)
    assert b1.crypto.receive_key(*a.who, key) is True
    assert b1.crypto.receive_key(*a.who, key) is False  # the first copy is kept


def test_the_replay_record_survives_a_restart_once_persisted(members: list[Member]) -> None:
    a, b1 = members[0], members[2]
    _, body = send(a, members, _text("once"))
    assert b1.crypto.decrypt(*a.who, body).duplicate is False
    fresh = GroupCrypto(b1.peer.core.state, b1.crypto._pickle_key)
    assert fresh.decrypt(*a.who, body).duplicate is False  # not persisted yet
    b1.crypto.save()
    restarted = GroupCrypto(b1.peer.core.state, b1.crypto._pickle_key)
    assert restarted.decrypt(*a.who, body).duplicate is True


def test_a_reused_index_is_refused_as_a_replay(members: list[Member]) -> None:
    a, b1 = members[0], members[2]
    send(a, members, _text("zero"))
    store = a.peer.store
    old, _ = store.outbound_session(GROUP)
    assert old is not None
    _, first = send(a, members, _text("one"))
    store.save_outbound_session(GROUP, old, new=False)  # a restored backup
    _, second = send(a, members, _text("two"))
    b1.crypto.decrypt(*a.who, first)
    with pytest.raises(DecryptError) as err:
        b1.crypto.decrypt(*a.who, second)
    assert err.value.code == "replayed"


def test_the_policy_rotates_by_count_and_age(members: list[Member]) -> None:
    a = members[0]
    sessions = {send(a, members, _text(str(i)))[0].session_id for i in range(5)}
    assert len(sessions) == 1
    plan, _ = send(a, members, _text("sixth"))
    assert plan.rotated == "max_messages" and len(plan.shares) == 5
    week = 7 * 24 * 3600 * 1000
    assert send(a, members, _text("late"), now=NOW + week)[0].rotated == "max_age"
    assert send(a, members, _text("back"), now=NOW)[0].rotated == "clock"


def test_encrypt_needs_a_prepared_session(members: list[Member]) -> None:
    a = members[0]
    with pytest.raises(CryptoError):
        a.crypto.encrypt(GROUP, _text("nothing prepared"))
    send(a, members, _text("ok"))
    a.crypto.member_removed(GROUP)
    with pytest.raises(CryptoError):
        a.crypto.encrypt(GROUP, _text("must rotate"))


def test_state_keys_get_new_epochs_and_the_first_copy_wins(members: list[Member]) -> None:
    a, b1 = members[0], members[2]
    first = a.crypto.new_state_key(GROUP)
    second = a.crypto.new_state_key(GROUP)
    assert (first.epoch, second.epoch) == (0, 1) and first.key != second.key
    assert b1.crypto.receive_state_key(second) is True
    assert b1.crypto.receive_state_key(first) is True
    other = GroupStateKey(GROUP, second.epoch, b64encode(os.urandom(32)))
    assert b1.crypto.receive_state_key(other) is False
    assert b1.peer.store.latest_state_key(GROUP) == (1, b64decode(second.key))
