"""printable: control characters from others are shown, never obeyed."""

from __future__ import annotations

import pytest

from porch.cli.text import one_line, printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J\x1b]0;pwned\x07", "\\x1b[2J\\x1b]0;pwned\\x07"),  # clear screen, retitle, bell
        ("ok\rfake", "ok\\rfake"),  # carriage return overwrites the line
        ("a\x08b\x7f", "a\\x08b\\x7f"),  # backspace, DEL
        ("\x9b31m", "\\x9b31m"),  # C1 CSI, one byte on 8-bit terminals
        ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override (Trojan Source)
        ("x\u2066y\u2069", "x\\u2066y\\u2069"),  # bidi isolates
        ("line\u2028sep", "line\\u2028sep"),
        ("tab\there", "tab\\there"),
        ("one\ntwo", "one\\ntwo"),
    ],
)
def test_controls_become_visible_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_ordinary_text_and_emoji_are_unchanged() -> None:
    text = "héllo [bold]wörld[/] 👩‍👩‍👧 日本語"  # the family emoji is joined by U+200D
    assert printable(text) == text


def test_multiline_indents_continuations_so_no_line_is_forged() -> None:
    assert printable("hi\n[12:00] bob: fake\r\n", multiline=True) == (
        "hi\n    [12:00] bob: fake\n    "
    )
    assert printable("a\rb", multiline=True) == "a\\rb"


def test_one_line_flattens_and_cuts() -> None:
    assert one_line("first\nsecond", 40) == "first second"
    assert one_line("x" * 50, 10) == "x" * 9 + "…"
    assert one_line("\x1b" * 3, 40) == "\\x1b" * 3
