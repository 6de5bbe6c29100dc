"""The rich-message commands' pure parts: durations, naming a message, history lines."""

from __future__ import annotations

from dataclasses import replace

import pytest

from porch.cli.rich import format_message, history_record, human_size, parse_duration, pick
from porch.client.errors import UsageError
from porch.client.history import HistoryMessage
from porch.crypto.rich import Attachment, Quote

ME = "aaaaaaaa-0000-4000-8000-000000000001"
BOB = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
NAMES = {ME: "me", BOB: "@bob"}


def _m(cid: str, text: str = "x", **kw: object) -> HistoryMessage:
    outgoing = bool(kw.pop("outgoing", False))
    return HistoryMessage(BOB, cid, outgoing, 1, 1_700_000_000_000, text, "received", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("off", 0), ("0", 0), ("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("1w", 604800),
     ("90", 90), ("365d", 31_536_000), (" 2H ", 7200)],
)  # fmt: skip
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["366d", "53w", "-1", "1y", "", "5 m", "1.5h", "9" * 12])
def test_bad_durations_say_what_to_give(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_duration(text)
    assert "give 30s, 5m, 1h, 1d or 1w" in str(info.value)


def test_pick_by_last_nth_and_id_prefix() -> None:
    messages = [_m("aaaa1111"), _m("bbbb2222"), _m("gone", deleted=True), _m("cccc3333")]
    assert pick(messages, "last").client_id == "cccc3333"
    assert pick(messages, "-1").client_id == "cccc3333"
    assert pick(messages, "-3").client_id == "aaaa1111"  # deleted ones do not count
    assert pick(messages, "bbbb").client_id == "bbbb2222"
    assert pick(messages, "aaaa1111").client_id == "aaaa1111"
    for bad in ("-4", "zzz", "gone", ""):
        with pytest.raises(UsageError):
            pick(messages, bad)
    with pytest.raises(UsageError) as info:
        pick([_m("ab1"), _m("ab2")], "ab")
    assert "starts 2 message ids" in str(info.value)


def test_history_lines_show_everything() -> None:
    photo = Attachment("AAECAwQFBgcICQoLDA0ODw", bytes(64), bytes(32), 2_500_000, "image/jpeg",
                       name="cat\x1b[2J.jpg", width=1024, height=768)  # fmt: skip
    m = _m(
        "abcdefgh12345678",
        "look\x07",
        reply=Quote("q1", ME, "earlier"),
        attachments=(photo,),
        reactions=((ME, "👍"), (BOB, "❤️")),
        edited=True,
        forwarded=True,
    )
    out = format_message(m, NAMES, ME)
    assert "> me (original not found; the replier's quote: \u201cearlier\u201d)" in out
    checked = format_message(replace(m, reply_found=True), NAMES, ME).splitlines()
    assert checked[1] == "    > me: earlier"  # under the header: the local original's text
    assert "abcdefgh @bob: look\\x07 (edited) (forwarded)" in out
    assert "📎 cat\\x1b[2J.jpg (image/jpeg, 2.5 MB, 1024\u00d7768)" in out
    assert "👍 me, ❤️ @bob" in out
    assert "\x1b" not in out and "\x07" not in out
    deleted = format_message(_m("d1", "", deleted=True), NAMES, ME)
    assert "This message was deleted" in deleted
    record = history_record(m)
    assert record["reply"] == {"id": "q1", "author": ME, "found": False} and record["edited"]
    assert record["attachments"] == [
        {"id": photo.id, "name": photo.name, "type": "image/jpeg", "size": 2_500_000}
    ]


def test_sizes() -> None:
    # The server's and the sender's unit style (decimal kB, MB), one everywhere (M2-10).
    assert [human_size(n) for n in (0, 999, 1000, 1_500_000, 10**12)] == [
        "0 bytes",
        "999 bytes",
        "1 kB",
        "1.5 MB",
        "1 TB",
    ]
