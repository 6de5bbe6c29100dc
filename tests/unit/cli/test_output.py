"""What others chose reaches the terminal escaped (recv, devices, the chat); --json is exact."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from textual.widgets import Input

from porch.cli.main import main
from porch.client import Client
from porch.tui import ChatApp
from tests.integration.server import ServerProcess
from tests.unit.cli.conftest import register

EVIL = "\x1b[2J\x1b]0;owned\x07red\r[bold]markup[/bold]\u202eevil"


def _send(profile: Path, to: str, text: str) -> None:
    async def go() -> None:
        async with Client(profile) as client:
            await client.send_text(to, text, timeout=20)

    asyncio.run(go())


@pytest.fixture
def pair(server: ServerProcess, tmp_path: Path) -> tuple[Path, Path, str]:
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    register(server, alice)
    bob_phone = register(server, bob, name="\x1b]0;phone\x07")
    return alice, bob, bob_phone


def test_recv_escapes_controls_and_json_stays_exact(
    pair: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob, bob_phone = pair
    _send(alice, bob_phone, EVIL)
    assert main(["recv", "--profile", str(bob), "--wait", "1"]) == 0
    out = capsys.readouterr().out
    assert "\\x1b[2J\\x1b]0;owned\\x07red\\r[bold]markup[/bold]\\u202eevil" in out
    assert not {"\x1b", "\x07", "\r", "\u202e"} & set(out)

    _send(alice, bob_phone, EVIL)
    assert main(["recv", "--profile", str(bob), "--wait", "1", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in records if "text" in r] == [EVIL]


def test_devices_escapes_a_device_name(
    pair: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _alice, bob, _phone = pair
    assert main(["devices", "--profile", str(bob)]) == 0
    out = capsys.readouterr().out
    assert "\\x1b]0;phone\\x07" in out and "\x1b" not in out


def test_chat_shows_controls_escaped(pair: tuple[Path, Path, str]) -> None:
    alice, bob, bob_phone = pair
    _send(alice, bob_phone, EVIL)
    assert main(["recv", "--profile", str(bob), "--wait", "1"]) == 0  # now in bob's history

    async def look() -> tuple[list[str], str]:
        client = Client(bob)
        app = ChatApp(client)
        async with app.run_test() as pilot:
            await pilot.pause()
            listing = app.query_one("#conversations")
            preview = str(listing.get_option_at_index(0).prompt)  # type: ignore[attr-defined]
            return app.history_lines, preview

    history, preview = asyncio.run(look())
    assert any("\\x1b[2J" in line and "[bold]markup[/bold]" in line for line in history)
    assert not any("\x1b" in line or "\r" in line for line in history)
    assert "\\x1b" in preview and "\x1b" not in preview


def test_chat_survives_a_pasted_100_kb_message(pair: tuple[Path, Path, str]) -> None:
    alice, _bob, bob_phone = pair

    async def paste() -> list[str]:
        client = Client(alice)
        app = ChatApp(client, open_to=bob_phone)
        async with client, app.run_test() as pilot:
            await pilot.pause()
            app.query_one("#composer", Input).value = "x" * 100_000
            await pilot.press("enter")
            await pilot.pause()
            assert app.is_running
            return [str(n.message) for n in app._notifications]

    notes = asyncio.run(paste())
    assert any("65,536 bytes" in n for n in notes), notes
