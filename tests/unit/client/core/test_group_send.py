"""Group sends and receipts in the core, without a socket (spec A, E): key share frames first,
then one frame with a shared Megolm body; mismatch recovery; rotation after a removal; what a
member device makes of them."""

from __future__ import annotations

import uuid
from typing import Any

from porch.client.core import FetchGroup, SendFrame
from porch.client.events import DecryptionFailed, GroupUpdated, Message
from porch.client.group_store import GroupMemberRow, LocalGroup
from porch.crypto.content import GroupUpdate, Text, encode_content
from porch.crypto.group_state import GroupSettings

from .conftest import Peer, PeerFactory, accounts_of, devices_of, events, fetches

GID = str(uuid.uuid4())
NOW = 1_700_000_000_000


def put_group(peers: list[Peer], accounts: list[str]) -> None:
    """Every peer's local view of the group: ``accounts`` are its members."""
    for p in peers:
        p.store.put_group(
            LocalGroup(
                group_id=GID,
                revision=1,
                role="member",
                blob=b"x",
                settings=GroupSettings(True, False),
                invite=False,
                members=tuple(GroupMemberRow(a, "member") for a in accounts),
            )
        )


def queue_group_text(sender: Peer, text: str, cid: str) -> None:
    content = encode_content(Text(cid, text, NOW, group=GID))
    sender.store.enqueue(cid, f"g:{GID}", content, False, NOW)


def directory_of(*peers: Peer) -> Any:
    return {p.account_id: p for p in peers}.__getitem__


def deliver(frames: list[SendFrame], sender: Peer, to: Peer) -> list[Any]:
    """Every envelope the frames make for ``to``, handled in order; the events."""
    got: list[Any] = []
    for frame in frames:
        for env in sender.envelopes_for(frame.frame, to):
            actions = to.core.receive(env)
            for fetch in fetches(actions):
                actions += to.core.keys_fetched(sender.account_id, fetch.token, sender.bundle())
            got += events(actions)
    return got


def sent(peer: Peer, frames: list[SendFrame]) -> None:
    for f in frames:
        peer.core.receive({"type": "sent", "id": f.frame["id"], "ts": NOW})


def texts(got: list[Any]) -> list[tuple[str, str | None, bool]]:
    return [(e.text, e.group, e.outgoing) for e in got if isinstance(e, Message)]


def test_share_frames_then_one_shared_frame(make_peer: PeerFactory) -> None:
    alice, bob, carol = make_peer(), make_peer(), make_peer()
    alice2, bob2 = make_peer(of=alice, device_id=2), make_peer(of=bob, device_id=2)
    everyone = [alice, alice2, bob, bob2, carol]
    put_group(everyone, [alice.account_id, bob.account_id, carol.account_id])
    queue_group_text(alice, "hello group", "g1")
    frames = alice.send_all(directory_of(bob, carol))
    *shares, message = frames
    assert shares and message.client_id == "g1" and message.frame["id"] == "g1"
    # The shares carry per-device Olm ciphertexts, no shared body, with fresh ids.
    for share in shares:
        assert share.frame.get("shared") is None and share.frame["id"] != "g1"
        assert all("body" in d for dest in share.frame["destinations"] for d in dest["devices"])
    shared_to = {
        (dest["account"], d["device"])
        for s in shares
        for dest in s.frame["destinations"]
        for d in dest["devices"]
    }
    assert shared_to == {
        (alice.account_id, 2),
        (bob.account_id, 1),
        (bob.account_id, 2),
        (carol.account_id, 1),
    }
    # The message: every member device (own other device included), one shared kind-2 body.
    assert message.frame["shared"]["kind"] == 2
    assert set(accounts_of(message.frame)) == {alice.account_id, bob.account_id, carol.account_id}
    assert [d["device"] for d in devices_of(message.frame, alice.account_id)] == [2]
    assert all("body" not in d for dest in message.frame["destinations"] for d in dest["devices"])
    for device in (bob, bob2, carol):
        assert texts(deliver(frames, alice, device)) == [("hello group", GID, False)]
        [row] = device.store.history(f"g:{GID}")
        assert (row.author, row.outgoing) == (alice.account_id, False)
    # The sent copy: outgoing on alice's other device, authored by alice.
    assert texts(deliver(frames, alice, alice2)) == [("hello group", GID, True)]
    # The delivery receipt goes 1:1 to the author, never to the group.
    bob.core.flush()
    [receipt] = bob.store.pending(0, 10)
    assert receipt.recipient == alice.account_id
    # Once the shares are acknowledged, the next message needs no share frame.
    sent(alice, frames)
    queue_group_text(alice, "second", "g2")
    [second] = alice.send_all(directory_of(bob, carol))
    assert second.frame["id"] == "g2" and second.frame["shared"]["kind"] == 2
    assert texts(deliver([second], alice, carol)) == [("second", GID, False)]


def test_a_mismatch_is_fixed_and_the_new_device_gets_the_key(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    put_group([alice, bob], [alice.account_id, bob.account_id])
    queue_group_text(alice, "one", "m1")
    frames = alice.send_all(directory_of(bob))
    sent(alice, frames)
    deliver(frames, alice, bob)
    # bob links a second device alice does not know: the server refuses the next message.
    bob2 = make_peer(of=bob, device_id=2)
    put_group([bob2], [alice.account_id, bob.account_id])
    queue_group_text(alice, "two", "m2")
    [refused] = alice.send_all(directory_of(bob))
    error = {
        "type": "error",
        "code": "mismatched_devices",
        "message": "devices changed",
        "ref": "m2",
        "accounts": [{"account": bob.account_id, "missing": [2], "extra": [], "stale": []}],
    }
    alice.core.receive(error)
    retried = alice.send_all(directory_of(bob))
    *shares, message = retried
    assert message.frame["id"] == "m2"
    shared_to = {d["device"] for s in shares for d in devices_of(s.frame, bob.account_id)}
    assert 2 in shared_to
    assert {d["device"] for d in devices_of(message.frame, bob.account_id)} == {1, 2}
    assert texts(deliver(retried, alice, bob2)) == [("two", GID, False)]
    assert refused.frame["id"] == "m2"


def test_removal_rotates_and_the_removed_member_cannot_read(make_peer: PeerFactory) -> None:
    alice, bob, carol = make_peer(), make_peer(), make_peer()
    members = [alice.account_id, bob.account_id, carol.account_id]
    put_group([alice, bob, carol], members)
    queue_group_text(alice, "before", "r1")
    first = alice.send_all(directory_of(bob, carol))
    sent(alice, first)
    for p in (bob, carol):
        deliver(first, alice, p)
    # carol is removed: alice's view loses her, the session must rotate.
    put_group([alice, bob], members[:2])
    alice.core.groups.member_removed(GID)
    queue_group_text(alice, "after", "r2")
    after = alice.send_all(directory_of(bob, carol))
    *shares, message = after
    assert shares, "a new session is shared"
    assert carol.account_id not in accounts_of(message.frame)
    assert texts(deliver(after, alice, bob)) == [("after", GID, False)]
    # Even if carol got the message body, her old session cannot open it.
    env = {
        "type": "envelope",
        "id": 991,
        "from": alice.account_id,
        "from_device": 1,
        "ts": NOW + 5,
        "kind": 2,
        "body": message.frame["shared"]["body"],
    }
    got = events(carol.core.receive(env))
    assert [type(e) for e in got] == [DecryptionFailed]
    assert 991 in carol.core.state.pending_acks  # acknowledged, never parked


def test_not_a_member_fails_in_words(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    put_group([alice], [bob.account_id])
    queue_group_text(alice, "hello?", "n1")
    [item] = alice.core.next_outbox_items()
    actions = alice.core.prepare(item)
    [failed] = [e for e in events(actions) if hasattr(e, "code")]
    assert failed.code == "not_member" and "no longer a member" in failed.message
    assert not [a for a in actions if isinstance(a, SendFrame)]


def test_a_group_update_is_told_and_the_group_fetched(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    put_group([alice, bob], [alice.account_id, bob.account_id])
    update = GroupUpdate(GID, 2, "add", (bob.account_id,))
    alice.store.enqueue("u1", f"g:{GID}", encode_content(update), False, NOW)
    frames = alice.send_all(directory_of(bob))
    got: list[Any] = []
    for frame in frames:
        for env in alice.envelopes_for(frame.frame, bob):
            actions = bob.core.receive(env)
            for fetch in fetches(actions):
                actions += bob.core.keys_fetched(alice.account_id, fetch.token, alice.bundle())
            got += events(actions)
            got += [a for a in actions if isinstance(a, FetchGroup)]
    assert FetchGroup(GID) in got
    assert not [e for e in got if isinstance(e, GroupUpdated)]  # a claim until the fetch
    group = _server_group([(alice.account_id, "admin"), (bob.account_id, "member")])
    after = events(bob.core.group_fetched(group))
    assert GroupUpdated(GID, 2, alice.account_id, "add", (bob.account_id,)) in after


def _server_group(accounts: list[tuple[str, str]], revision: int = 2) -> Any:
    from porch.client.group_api import Group, GroupMember

    return Group(
        id=GID,
        revision=revision,
        state=b"\x01" + bytes(40),
        settings=GroupSettings(True, False),
        members=tuple(GroupMember(a, r) for a, r in accounts),  # type: ignore[arg-type]
        pending=(),
        invite=False,
    )


def test_a_refetch_that_loses_a_member_rotates(make_peer: PeerFactory) -> None:
    alice, bob, carol = make_peer(), make_peer(), make_peer()
    put_group([alice], [alice.account_id, bob.account_id, carol.account_id])
    leave = GroupUpdate(GID, 3, "leave")
    # A leave update (as a handler would see it), then the fetch without carol.
    from porch.client.core.group_receive import GroupUpdateHandler
    from porch.client.core.handlers import Envelope

    handler = GroupUpdateHandler(alice.core._sync)
    handler.react(alice.core.state, Envelope(1, NOW, carol.account_id, 1), leave, True)
    out = alice.core.state.take()
    assert FetchGroup(GID) in out
    group = _server_group([(alice.account_id, "admin"), (bob.account_id, "member")])
    after = alice.core.group_fetched(group)
    from porch.client.core import RotateStateKey

    assert RotateStateKey(GID) in after  # alice is the lowest (only) admin
    assert alice.store.outbound_session(GID)[1] is True  # the session rotates next send
    assert {m.account_id for m in alice.store.group_members(GID)} == {
        alice.account_id,
        bob.account_id,
    }


def test_a_404_marks_the_group_left(make_peer: PeerFactory) -> None:
    from porch.client.errors import ServerError

    alice, bob = make_peer(), make_peer()
    put_group([alice], [alice.account_id, bob.account_id])
    alice.core.receive({"type": "group_changed", "group": GID, "revision": 5})
    out = alice.core.group_fetch_failed(GID, ServerError("not_found", "no such group", 404))
    assert events(out) == [GroupUpdated(GID, 1, "", "remove", (alice.account_id,))]
    assert {m.account_id for m in alice.store.group_members(GID)} == {bob.account_id}
    # A second 404 says nothing more; a send to it fails in words.
    assert events(alice.core.group_fetch_failed(GID, ServerError("not_found", "x", 404))) == []
    queue_group_text(alice, "anyone?", "z1")
    [item] = alice.core.next_outbox_items()
    [failed] = [e for e in events(alice.core.prepare(item)) if hasattr(e, "code")]
    assert failed.code == "not_member"


def _claim(peer: Peer, by: str, update: GroupUpdate) -> None:
    from porch.client.core.group_receive import GroupUpdateHandler
    from porch.client.core.handlers import Envelope

    handler = GroupUpdateHandler(peer.core._sync)
    handler.react(peer.core.state, Envelope(1, NOW, by, 1), update, True)


def test_a_forged_group_update_is_dropped_never_shown(make_peer: PeerFactory) -> None:
    # trial2: anyone may send a group_update (over Olm: any contact; over Megolm: any
    # member); the receiver shows it only once the fetched group bears it out.
    alice, bob, dave, mallory = make_peer(), make_peer(), make_peer(), make_peer()
    put_group([dave], [alice.account_id, bob.account_id, dave.account_id])
    a, b, d, m = alice.account_id, bob.account_id, dave.account_id, mallory.account_id
    group = _server_group([(a, "admin"), (b, "member"), (d, "member")], revision=4)
    forged = [
        (m, GroupUpdate(GID, 4, "remove", (b,))),  # not a member at all
        (m, GroupUpdate(GID, 4, "state")),
        (b, GroupUpdate(GID, 4, "remove", (a,))),  # a is still in the group
        (b, GroupUpdate(GID, 4, "promote", (b,))),  # only admins promote; b is no admin
        (a, GroupUpdate(GID, 9, "state")),  # a revision the server has not reached
        (a, GroupUpdate(GID, 4, "leave")),  # a is still in it
    ]
    for by, update in forged:
        _claim(dave, by, update)
    _claim(dave, b, GroupUpdate(GID, 4, "state"))  # members may edit in this group
    assert dave.core.state.take() == [FetchGroup(GID)]  # the first claim's
    # The claims that came while it was out wait for the fetch after it (which may have left
    # before their change was made); the first claim is judged by the first fetch.
    first = dave.core.group_fetched(group)
    assert not events(first)
    assert FetchGroup(GID) in first  # asked again
    shown = [e for e in events(dave.core.group_fetched(group)) if isinstance(e, GroupUpdated)]
    assert shown == [GroupUpdated(GID, 4, b, "state", ())]
    # A claim that comes while a fetch is out waits for the fetch after it.
    _claim(dave, a, GroupUpdate(GID, 5, "state"))
    _claim(dave, a, GroupUpdate(GID, 6, "state"))
    assert dave.core.state.take() == [FetchGroup(GID)]
    first = dave.core.group_fetched(group)  # it may have left before revision 6 was made
    assert not events(first)
    assert FetchGroup(GID) in first  # asked again
    newer = _server_group([(a, "admin"), (b, "member"), (d, "member")], revision=6)
    shown = [e for e in events(dave.core.group_fetched(newer)) if isinstance(e, GroupUpdated)]
    assert [e.revision for e in shown] == [6]
    # A promotion undone since (promote at 7, demote at 8) is still shown: the group moved on.
    _claim(dave, a, GroupUpdate(GID, 7, "promote", (b,)))
    later = _server_group([(a, "admin"), (b, "member"), (d, "member")], revision=8)
    shown = [e for e in events(dave.core.group_fetched(later)) if isinstance(e, GroupUpdated)]
    assert [(e.action, e.revision) for e in shown] == [("promote", 7)]


def test_a_removal_found_by_a_failed_fetch_names_who_removed(make_peer: PeerFactory) -> None:
    from porch.client.errors import ServerError

    alice, bob, mallory = make_peer(), make_peer(), make_peer()
    put_group([bob], [alice.account_id, bob.account_id])
    a, b, m = alice.account_id, bob.account_id, mallory.account_id
    _claim(bob, m, GroupUpdate(GID, 2, "remove", (b,)))  # not a member: not believed
    _claim(bob, a, GroupUpdate(GID, 2, "remove", (b,)))
    out = events(bob.core.group_fetch_failed(GID, ServerError("not_found", "no group", 404)))
    assert [e for e in out if isinstance(e, GroupUpdated)] == [
        GroupUpdated(GID, 1, a, "remove", (b,))
    ]


def test_a_removed_member_sending_on_with_its_old_session_is_not_shown(
    make_peer: PeerFactory,
) -> None:
    # trial2: carol, removed, kept her membership locally and sent on with the session the
    # members had from her; they showed it as the group's.
    bob, carol = make_peer(), make_peer()
    put_group([bob, carol], [bob.account_id, carol.account_id])
    queue_group_text(carol, "before", "c1")
    frames = carol.send_all(directory_of(bob))
    sent(carol, frames)
    assert [e.text for e in deliver(frames, carol, bob) if isinstance(e, Message)] == ["before"]
    bob.core.group_fetched(_server_group([(bob.account_id, "admin")], revision=3))
    queue_group_text(carol, "after", "c2")
    frames = carol.send_all(directory_of(bob))
    got = deliver(frames, carol, bob)
    assert not [e for e in got if isinstance(e, Message)]
    assert [e.reason for e in got if isinstance(e, DecryptionFailed)] == [
        "sent by someone who is no longer in the group: not shown"
    ]
    # Her leave update still opens (sent after she left); the fetched group bears it out.
    leave = GroupUpdate(GID, 3, "leave")
    carol.store.enqueue("u9", f"g:{GID}", encode_content(leave), False, NOW)
    got = deliver(carol.send_all(directory_of(bob)), carol, bob)
    assert not [e for e in got if isinstance(e, DecryptionFailed)]
    after = events(bob.core.group_fetched(_server_group([(bob.account_id, "admin")], 3)))
    assert GroupUpdated(GID, 3, carol.account_id, "leave", ()) in after


def test_a_kind_2_body_replayed_by_another_account_is_never_shown_as_anyones(
    make_peer: PeerFactory,
) -> None:
    # trial2: mallory captures alice's shared body and sends it to bob as her own (a raw
    # `send` with the same `shared`), then alice's own envelope comes again (a replay).
    alice, bob, mallory = make_peer(), make_peer(), make_peer()
    put_group([alice, bob], [alice.account_id, bob.account_id])
    queue_group_text(alice, "hi", "a1")
    frames = alice.send_all(directory_of(bob))
    got = deliver(frames, alice, bob)
    assert [e.text for e in got if isinstance(e, Message)] == ["hi"]
    message = frames[-1].frame
    stolen = alice.envelopes_for(message, bob)[0]
    as_mallory = {**stolen, "id": stolen["id"] + 1000, "from": mallory.account_id}
    out = events(bob.core.receive(as_mallory))
    assert not [e for e in out if isinstance(e, Message)]
    assert [e.sender for e in out if isinstance(e, DecryptionFailed)] == [mallory.account_id]
    again = {**stolen, "id": stolen["id"] + 2000}
    assert not [e for e in events(bob.core.receive(again)) if isinstance(e, Message)]
    texts = [m.text for m in bob.store.history(f"g:{GID}") if m.author == alice.account_id]
    assert texts == ["hi"]  # once, and nothing under mallory's name but a placeholder
