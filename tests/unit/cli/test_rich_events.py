"""`porch recv`'s lines for reactions, edits and deletes (porch.cli.rich_events)."""

from __future__ import annotations

from porch.cli.rich_events import describe, preview, record
from porch.client import MessageDeleted, MessageEdited, ReactionChanged
from porch.client.history import HistoryMessage
from porch.crypto.rich import Attachment

BOB = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
ME = "aaaaaaaa-0000-4000-8000-000000000001"


def _m(text: str, **kw: object) -> HistoryMessage:
    return HistoryMessage(BOB, "m1", False, 1, 1_700_000_000_000, text, "received", **kw)  # type: ignore[arg-type]


def test_a_reaction_names_the_message_it_reacts_to() -> None:
    event = ReactionChanged(BOB, "m1", ME, BOB, "👍")
    assert describe(event, "@bob", _m("hello")) == "@bob reacted 👍 to \u201chello\u201d"
    removed = ReactionChanged(BOB, "m1", ME, BOB, "")
    assert describe(removed, "@bob", None) == "@bob removed their reaction to a message"
    photo = Attachment("AAECAwQFBgcICQoLDA0ODw", bytes(64), bytes(32), 10, "image/jpeg", "c.jpg")
    assert describe(event, "@bob", _m("", attachments=(photo,))).endswith("\u201c📎 c.jpg\u201d")
    assert describe(event, "@bob", _m("hi"), "Family").endswith("\u201chi\u201d in Family")


def test_an_edit_shows_before_and_after() -> None:
    event = MessageEdited(BOB, "m1", BOB, "hello, edited", 5)
    target = _m("hello, edited", edits=((1, "hello"),), edited=True)
    want = "@bob edited \u201chello\u201d \u2192 \u201chello, edited\u201d"
    assert describe(event, "@bob", target) == want
    assert describe(event, "@bob", None) == "@bob edited a message \u2192 \u201chello, edited\u201d"


def test_a_delete_and_long_bodies() -> None:
    assert describe(MessageDeleted(BOB, "m1", BOB), "@bob", _m("x")) == "@bob deleted a message"
    long = preview("word " * 30 + "\nnext")
    assert long.endswith("…\u201d") and len(long) == 42 and "\n" not in long


def test_json_records_carry_who_what_and_the_sentence() -> None:
    event = ReactionChanged("g:grp1", "m1", ME, BOB, "👍")
    r = record(event, "@bob reacted")
    assert r == {"type": "reaction", "from": BOB, "author": ME, "peer": "g:grp1",
                 "group": "grp1", "id": "m1", "emoji": "👍", "text": "@bob reacted"}  # fmt: skip
    edit = record(MessageEdited(BOB, "m1", BOB, "new", 7), "t")
    assert edit["type"] == "edit" and edit["body"] == "new" and edit["group"] is None
    assert record(MessageDeleted(BOB, "m1", BOB), "t")["type"] == "delete"
