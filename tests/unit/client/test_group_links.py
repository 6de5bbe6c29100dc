"""Group invite links (spec E): format, parse, and refusals in words."""

from __future__ import annotations

import os

import pytest

from porch.client.errors import UsageError
from porch.client.group_links import GroupLink, format_group_link, parse_group_link

TOKEN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234"
KEY = bytes(range(32))
LINK = f"porch://group?token={TOKEN}#key=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8&epoch=7"


def test_format_and_parse_round_trip() -> None:
    link = GroupLink(TOKEN, KEY, 7)
    assert format_group_link(link) == LINK
    assert parse_group_link(LINK) == link
    assert parse_group_link(f"  {LINK}\n") == link
    other = GroupLink(TOKEN, os.urandom(32), 2**32 - 1)
    assert parse_group_link(format_group_link(other)) == other


def test_the_key_never_shows_in_a_repr() -> None:
    assert "AAEC" not in repr(parse_group_link(LINK)) and TOKEN not in repr(
        GroupLink(TOKEN, KEY, 1)
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("https://group?token=x", "must start with porch://group"),
        ("porch://link?token=" + TOKEN, "must start with porch://group"),
        (f"porch://group?token={TOKEN}", "after #"),
        (f"porch://group?token={TOKEN[:-1]}#key=AA&epoch=1", "invite token"),
        (LINK.replace("token=", "tok="), "invite token"),
        (LINK + "&epoch=8", "appears twice"),
        (LINK.replace("&epoch=7", ""), "epoch"),
        (LINK.replace("epoch=7", "epoch=07"), "epoch"),
        (LINK.replace("epoch=7", "epoch=4294967296"), "epoch"),
        (LINK.replace("epoch=7", "epoch=-1"), "epoch"),
        (LINK.replace("key=AAEC", "key=AAE"), "group key"),
        (LINK.replace("Hh8", "Hh9"), "exactly 32 bytes"),  # non-canonical last character
        (LINK.replace("key=AAEC", "key=+AEC"), "group key"),
        (LINK + "x" * 300, "longer than"),
        (LINK.replace("group", "gröup"), "ASCII"),
    ],
)
def test_bad_links_are_refused_in_words(text: str, words: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_group_link(text)
    assert err.value.code == "bad_link" and words in str(err.value)


def test_formatting_checks_its_fields() -> None:
    for link in (GroupLink("short", KEY, 1), GroupLink(TOKEN, b"k", 1), GroupLink(TOKEN, KEY, -1)):
        with pytest.raises(UsageError):
            format_group_link(link)
