"""Applying reactions, edits, deletes and timers (porch.client.core.rich): real Olm between
real cores, the rules checked on the receiving side."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from porch.client.core.handlers import Envelope
from porch.client.core.rich import (
    APPLIER,
    GroupRichHandler,
    describe_seconds,
    timer_notice,
    within_window,
)
from porch.client.events import (
    Event,
    Message,
    MessageDeleted,
    MessageEdited,
    ReactionChanged,
    TimerChanged,
)
from porch.client.history import HistoryMessage, MessageExtra
from porch.client.rich_store import StoredMessage
from porch.crypto.content import (
    Delete,
    Edit,
    Encodable,
    Reaction,
    Sent,
    Text,
    Timer,
    encode_content,
)
from porch.crypto.rich import DELETE_WINDOW_MS, Attachment

from .conftest import Peer, PeerFactory, events, fetches

NOW = 1_700_000_000_000
_ids = itertools.count(1)
PHOTO = Attachment("AAECAwQFBgcICQoLDA0ODw", bytes(64), bytes(32), 5, "image/png", name="p.png")


def _queue(sender: Peer, to: str, content: Encodable) -> None:
    sender.store.enqueue(f"q{next(_ids)}", to, encode_content(content), False, NOW)


def _deliver(sender: Peer, to: Peer, at: int | None = None) -> list[Event]:
    """Send everything in ``sender``'s outbox and hand it to ``to`` (stored by the server at
    ``at``, default just after NOW); the events it emitted."""
    directory = {to.account_id: to}.__getitem__
    out: list[Event] = []
    for frame in sender.send_all(directory):
        sender.core.not_sent(frame.client_id)  # nothing waits for the server's answer here
        sender.store.dequeue(frame.client_id)
        for env in sender.envelopes_for(frame.frame, to, at):
            actions = to.core.receive(env)
            for fetch in fetches(actions):
                actions += to.core.keys_fetched(sender.account_id, fetch.token, sender.bundle())
            out += events(actions)
    return out


def _conversation(make_peer: PeerFactory, clock: int = NOW) -> tuple[Peer, Peer, str]:
    """alice wrote "hello" to bob (with an attachment); bob has it. Returns (alice, bob, id)."""
    alice, bob = make_peer(), make_peer()
    bob.core.state.clock = lambda: clock
    _queue(alice, bob.account_id, Text("m1", "hello", NOW, attachments=(PHOTO,)))
    [message] = [e for e in _deliver(alice, bob, at=NOW) if isinstance(e, Message)]
    assert message.attachments == (PHOTO,)
    return alice, bob, "m1"


def _only(peer: Peer, other: Peer) -> HistoryMessage:
    [m] = [m for m in peer.store.history(other.account_id) if m.status != "notice"]
    return m


def test_reactions_add_change_and_remove(make_peer: PeerFactory) -> None:
    alice, bob, mid = _conversation(make_peer)
    # bob reacts to alice's message on alice's side: bob to alice.
    _queue(bob, alice.account_id, Text("b1", "hi", NOW))
    _deliver(bob, alice)
    _queue(bob, alice.account_id, Reaction("b1", bob.account_id, "👍", NOW + 1))
    got = _deliver(bob, alice)
    assert ReactionChanged(bob.account_id, "b1", bob.account_id, bob.account_id, "👍") in got
    _queue(alice, bob.account_id, Reaction(mid, alice.account_id, "🎉", NOW + 2))
    _queue(alice, bob.account_id, Reaction(mid, alice.account_id, "❤️", NOW + 3))
    changes = [e for e in _deliver(alice, bob) if isinstance(e, ReactionChanged)]
    assert [c.emoji for c in changes] == ["🎉", "❤️"]
    assert _only(bob, alice).reactions == ((alice.account_id, "❤️"),)
    _queue(alice, bob.account_id, Reaction(mid, alice.account_id, "", NOW + 4))
    assert next(e for e in _deliver(alice, bob) if isinstance(e, ReactionChanged)).emoji == ""
    assert _only(bob, alice).reactions == ()


def test_a_reaction_naming_a_third_author_is_ignored(make_peer: PeerFactory) -> None:
    alice, bob, mid = _conversation(make_peer)
    carol = make_peer()
    _queue(alice, bob.account_id, Reaction(mid, carol.account_id, "👍", NOW + 1))
    # ... and so is a group's reaction sent over Olm instead of the group's session.
    _queue(alice, bob.account_id, Reaction(mid, alice.account_id, "👍", NOW + 2, group="g-1"))
    assert not [e for e in _deliver(alice, bob) if isinstance(e, ReactionChanged)]
    assert _only(bob, alice).reactions == ()


def test_edits_from_the_author_keep_history(make_peer: PeerFactory) -> None:
    alice, bob, mid = _conversation(make_peer)
    _queue(alice, bob.account_id, Edit(mid, "hello, world", NOW + 1000))
    assert MessageEdited(alice.account_id, mid, alice.account_id, "hello, world", NOW + 1000) in (
        _deliver(alice, bob)
    )
    m = _only(bob, alice)
    assert (m.text, m.edited, m.edits) == ("hello, world", True, ((NOW, "hello"),))
    assert m.attachments == (PHOTO,)  # an edit changes the caption only


def test_nobody_edits_or_deletes_another_ones_message(make_peer: PeerFactory) -> None:
    """alice's m1 is on both sides; bob's edit or delete of "m1" names a message of his own,
    which does not exist, so alice's stays as it is (whatever ids or authors he claims)."""
    alice, bob, mid = _conversation(make_peer)
    alice.store.add_message(bob.account_id, mid, True, 1, NOW, "hello", "sent")
    alice.core.state.clock = lambda: NOW
    _queue(bob, alice.account_id, Edit(mid, "forged", NOW + 1))
    _queue(bob, alice.account_id, Delete(mid, NOW + 2))
    _queue(bob, alice.account_id, Sent(bob.account_id, Edit(mid, "forged copy", NOW + 3)))
    assert [e for e in _deliver(bob, alice) if isinstance(e, MessageEdited | MessageDeleted)] == []
    [mine] = alice.store.history(bob.account_id)
    assert (mine.text, mine.edited, mine.deleted) == ("hello", False, False)


@pytest.mark.parametrize("kind", ["edit", "delete"])
def test_edits_and_deletes_past_the_window_are_ignored(make_peer: PeerFactory, kind: str) -> None:
    """The window counts between the server's timestamps: an action the server stored 48 h
    and a second after the original is ignored, whatever ts its sender wrote in it."""
    alice, bob, mid = _conversation(make_peer, clock=NOW + 3 * DELETE_WINDOW_MS)
    claimed = NOW + 1000  # "one second after the original", says the sender
    content = Edit(mid, "late", claimed) if kind == "edit" else Delete(mid, claimed)
    _queue(alice, bob.account_id, content)
    got = _deliver(alice, bob, at=NOW + DELETE_WINDOW_MS + 1000)
    assert [e for e in got if isinstance(e, MessageEdited | MessageDeleted)] == []
    m = _only(bob, alice)
    assert m.text == "hello" and not m.deleted and not m.edited


@pytest.mark.parametrize("kind", ["edit", "delete"])
def test_the_window_ignores_the_senders_clock(make_peer: PeerFactory, kind: str) -> None:
    """A sender's clock that is days off neither shuts nor opens the window: the server
    stored the action within it, so it applies."""
    alice, bob, mid = _conversation(make_peer)
    claimed = NOW + 5 * DELETE_WINDOW_MS
    content = Edit(mid, "on time", claimed) if kind == "edit" else Delete(mid, claimed)
    _queue(alice, bob.account_id, content)
    got = _deliver(alice, bob, at=NOW + 60_000)
    assert [e for e in got if isinstance(e, MessageEdited | MessageDeleted)]


def test_a_text_dated_far_in_the_future_shows_at_the_servers_time(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    far = NOW + 30 * 86_400_000
    _queue(alice, bob.account_id, Text("f1", "from the future", far, expires=60))
    _queue(alice, bob.account_id, Text("f2", "a bit ahead", NOW + 3_600_000))
    _deliver(alice, bob, at=NOW)
    shown = {m.client_id: m for m in bob.store.history(alice.account_id)}
    assert shown["f1"].ts == NOW and shown["f1"].expires_at == NOW + 60_000
    assert shown["f2"].ts == NOW + 3_600_000  # within a day of the server's time: as dated


def test_delete_for_everyone_leaves_a_marker_and_unlinks_files(
    make_peer: PeerFactory, tmp_path: Path
) -> None:
    alice, bob, mid = _conversation(make_peer)
    saved = tmp_path / "p.png"
    saved.write_bytes(b"pixels")
    with bob.store.transaction() as db:
        db.execute(
            "INSERT INTO downloads (media_id, path, peer, client_id, created) VALUES (?,?,?,?,?)",
            (PHOTO.id, str(saved), alice.account_id, mid, NOW),
        )
    _queue(alice, bob.account_id, Delete(mid, NOW + 5))
    assert MessageDeleted(alice.account_id, mid, alice.account_id) in _deliver(alice, bob)
    m = _only(bob, alice)
    assert m.deleted and m.text == "" and m.attachments == ()
    assert not saved.exists()
    # Deleted stays deleted: a later edit does not bring it back.
    _queue(alice, bob.account_id, Edit(mid, "back", NOW + 6))
    _deliver(alice, bob)
    assert _only(bob, alice).text == ""


def test_a_timer_sets_the_conversation_and_adds_a_notice(make_peer: PeerFactory) -> None:
    alice, bob, _ = _conversation(make_peer)
    _queue(alice, bob.account_id, Timer(86400, NOW + 1))
    assert TimerChanged(alice.account_id, 86400, alice.account_id) in _deliver(alice, bob)
    assert bob.store.timer(alice.account_id) == 86400
    notices = [m.text for m in bob.store.history(alice.account_id) if m.status == "notice"]
    assert notices == [
        f"{bob.core.state.label(alice.account_id)} set disappearing messages to 1 day"
    ]
    _queue(alice, bob.account_id, Timer(0, NOW + 2))
    _deliver(alice, bob)
    assert bob.store.timer(alice.account_id) == 0
    # A disappearing text expires from its own ts.
    _queue(alice, bob.account_id, Text("gone", "soon", NOW + 3, expires=60))
    [message] = [e for e in _deliver(alice, bob, at=NOW) if isinstance(e, Message)]
    assert message.expires_at == NOW + 3 + 60_000
    [stored] = [m for m in bob.store.history(alice.account_id) if m.client_id == "gone"]
    assert stored.expires_at == NOW + 3 + 60_000


def test_own_actions_from_another_device_apply_as_ones_own(make_peer: PeerFactory) -> None:
    alice, bob = make_peer(), make_peer()
    alice2 = make_peer(of=alice, device_id=2)
    for peer in (alice, alice2):
        peer.core.state.clock = lambda: NOW
    # alice's two devices both hold bob's message.
    _queue(bob, alice.account_id, Text("b1", "from bob", NOW))
    directory = {alice.account_id: alice}.__getitem__
    [frame] = bob.send_all(directory)
    for device in (alice, alice2):
        for env in bob.envelopes_for(frame.frame, device):
            actions = device.core.receive(env)
            for fetch in fetches(actions):
                device.core.keys_fetched(bob.account_id, fetch.token, bob.bundle())
    # alice reacts on device 1: her device 2 gets the sent copy.
    _queue(alice, bob.account_id, Reaction("b1", bob.account_id, "👍", NOW + 1))
    got = _deliver(alice, alice2)
    assert ReactionChanged(bob.account_id, "b1", bob.account_id, alice.account_id, "👍") in got
    [m] = alice2.store.history(bob.account_id)
    assert m.reactions == ((alice.account_id, "👍"),)
    # A sent copy from someone else means nothing.
    _queue(bob, alice.account_id, Sent(bob.account_id, Timer(60, NOW + 2)))
    _deliver(bob, alice)
    assert alice.store.timer(bob.account_id) == 0


def _group_env(sender: str) -> Envelope:
    return Envelope(next(_ids), NOW, sender, 1)


def test_group_actions_follow_the_row_author(make_peer: PeerFactory) -> None:
    me, alice, bob = make_peer(), make_peer(), make_peer()
    state = me.core.state
    state.clock = lambda: NOW
    gid = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    peer = "g:" + gid
    me.store.add_message(peer, "a1", False, 1, NOW, "alice's", "received", author=alice.account_id)
    me.store.add_message(peer, "m1", True, 1, NOW, "mine", "sent", author=me.account_id)
    handler = GroupRichHandler()

    def apply(sender: Peer, content: Reaction | Edit | Delete) -> bool:
        env = _group_env(sender.account_id)
        with me.store.transaction() as db:
            return handler.persist(state, env, content, db)

    assert apply(bob, Reaction("a1", alice.account_id, "👍", NOW, group=gid))
    assert apply(bob, Reaction("m1", me.account_id, "🔥", NOW, group=gid))
    assert not apply(bob, Edit("a1", "bob's forgery", NOW, group=gid))
    assert not apply(bob, Delete("m1", NOW, group=gid))
    assert apply(alice, Edit("a1", "alice's, edited", NOW + 1, group=gid))
    assert apply(alice, Delete("a1", NOW + 2, group=gid))
    by_id = {m.client_id: m for m in me.store.history(peer)}
    assert by_id["a1"].deleted and by_id["a1"].reactions == ()
    assert by_id["m1"].reactions == ((bob.account_id, "🔥"),) and by_id["m1"].text == "mine"


def test_a_timer_never_applies_to_a_group_conversation(make_peer: PeerFactory) -> None:
    me = make_peer()
    with me.store.transaction() as db:
        assert not APPLIER.persist(me.core.state, "g:x", me.account_id, Timer(60, NOW), db, NOW)


def test_notices_and_placeholders_cannot_be_edited(make_peer: PeerFactory) -> None:
    me, alice = make_peer(), make_peer()
    me.core.state.clock = lambda: NOW
    me.store.add_message(alice.account_id, "n1", False, 0, NOW, "a notice", "notice")
    with me.store.transaction() as db:
        edit = Edit("n1", "rewritten", NOW)
        assert not APPLIER.persist(me.core.state, alice.account_id, alice.account_id, edit, db, NOW)


def test_windows_and_wording() -> None:
    # Stored by the server at NOW + 5 s, dated (by its sender) three days earlier.
    m = HistoryMessage("p", "m", False, 1, NOW - 3 * 86_400_000, "x", "received")
    stored = StoredMessage(1, m, MessageExtra(), server_ts=NOW + 5000)
    assert within_window(stored, NOW + 5000 + DELETE_WINDOW_MS)
    assert not within_window(stored, NOW + 5001 + DELETE_WINDOW_MS)
    own = StoredMessage(2, m, MessageExtra())  # one's own send: its ts is the server's ack
    assert not within_window(own, NOW)
    assert [describe_seconds(s) for s in (30, 300, 3600, 86400, 604800, 90, 1)] == [
        "30 seconds",
        "5 minutes",
        "1 hour",
        "1 day",
        "1 week",
        "90 seconds",
        "1 second",
    ]
    assert timer_notice("You", 0) == "You turned off disappearing messages"
    assert timer_notice("Bob", 3600) == "Bob set disappearing messages to 1 hour"
