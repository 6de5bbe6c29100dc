"""The composer's lines in `porch chat` (porch.tui.commands): which are commands, `/to`."""

from __future__ import annotations

import pytest

from porch.tui.commands import COMMANDS, is_command, recipient


@pytest.mark.parametrize("command", COMMANDS)
def test_each_rich_command_is_a_command_alone_or_with_text(command: str) -> None:
    assert is_command(command)
    assert is_command(f"{command} some text")


@pytest.mark.parametrize("line", ["hello", "/replying to you", "/to @bob", "/unknown x", " /edit"])
def test_other_lines_are_texts(line: str) -> None:
    assert not is_command(line)


def test_to_names_whom_to_open() -> None:
    assert recipient("/to @bob") == "@bob"
    assert recipient("/to   +14155550100  ") == "+14155550100"
    assert recipient("/to ") == ""  # the app trims the line first: "/to " never reaches it
    assert recipient("/tonight") is None
    assert recipient("hello /to @bob") is None
