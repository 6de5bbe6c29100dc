"""How `porch chat` draws one message (porch.tui.rich.message_line): ticks, notices, authors."""

from __future__ import annotations

from porch.client.history import HistoryMessage
from porch.client.retry import NOTICE
from porch.tui.rich import PAUSED_LINE, clock, message_line

BOB = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
TS = 1_700_000_000_000


def _m(status: str, outgoing: bool = True, **kw: object) -> HistoryMessage:
    return HistoryMessage(BOB, "cid1", outgoing, 1, TS, "hi [b]x[/b]", status, **kw)  # type: ignore[arg-type]


def _plain(msg: HistoryMessage, failed: bool = False, paused: bool = False) -> str:
    return message_line(msg, lambda a: f"<{a[:4]}>", lambda a: f"{a}: ", failed, paused)[1]


def test_a_sent_message_shows_its_time_and_tick() -> None:
    assert _plain(_m("pending")) == f"hi [b]x[/b]  {clock(TS)} ⧗"
    assert _plain(_m("delivered")).endswith(" ✓✓")
    assert _plain(_m("read")).endswith(" ✓✓ read")
    assert _plain(_m("odd")).endswith(" ?")


def test_failed_and_paused_override_the_tick() -> None:
    assert _plain(_m("pending"), failed=True).endswith("✗ not sent")
    assert _plain(_m("pending"), paused=True).endswith(PAUSED_LINE)
    assert _plain(_m("sent"), paused=True).endswith(" ✓")  # paused only while pending


def test_a_received_group_message_names_its_author_after_the_time() -> None:
    plain = _plain(_m("received", outgoing=False, author="alice"))
    assert plain == f"{clock(TS)}  alice: hi [b]x[/b]"


def test_a_notice_is_marked_and_has_no_tick() -> None:
    assert _plain(_m(NOTICE, outgoing=False)) == "! hi [b]x[/b]"


def test_reactions_go_on_a_line_below() -> None:
    plain = _plain(_m("sent", reactions=((BOB, "👍"),)))
    assert plain.splitlines()[1] == "👍 <0f8e>"
