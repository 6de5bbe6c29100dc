"""`porch group settings` against a real server: without an option it prints the settings;
--members-can-edit / --join-approval change them on the server and in the sealed state and
queue one ``settings`` update for the members; a member is refused in one sentence; a bad
value is argparse's refusal. `porch group invite --revoke` turns the link off."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import pytest

from porch.cli.exits import Exit
from porch.cli.main import main
from porch.client import Client
from porch.client.group_api import Group, GroupApi
from porch.crypto.content import GroupUpdate, decode_content
from porch.crypto.group_state import blob_epoch, open_group_state
from tests.integration.server import ServerProcess
from tests.unit.cli.conftest import register


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    got = capsys.readouterr()
    return code, got.out, got.err


def _server_group(profile: Path, gid: str) -> Group:
    async def get() -> Group:
        async with Client(profile) as client:
            return await GroupApi(client.api).get(gid)

    return asyncio.run(get())


def _queued_actions(profile: Path, gid: str) -> list[str]:
    client = Client(profile)
    try:
        entries = client.outbox()
    finally:
        asyncio.run(client.aclose())
    contents = [decode_content(e.content) for e in entries if e.recipient == f"g:{gid}"]
    return [c.action for c in contents if isinstance(c, GroupUpdate)]


def test_group_settings_show_change_and_refuse(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice_dir, bob_dir = tmp_path / "alice", tmp_path / "bob"
    tag = secrets.token_hex(3)
    register(server, alice_dir, username=f"alice{tag}")
    register(server, bob_dir, username=f"bob{tag}")
    a, b = ["--profile", str(alice_dir)], ["--profile", str(bob_dir)]
    no = ["--no-send", *a]

    code, out, err = _run(
        ["group", "create", "Hikers", "--member", f"@bob{tag}", "--no-send", "--json", *a], capsys
    )
    assert code == Exit.OK, err
    gid = json.loads(out)["id"]

    # No option: the settings as they are, in words and as JSON.
    code, out, err = _run(["group", "settings", "Hikers", *a], capsys)
    assert code == Exit.OK, err
    assert out.splitlines() == [
        "Settings of Hikers:",
        "Members can edit the group info: yes",
        "Admins approve new members: no (a link joins at once)",
    ]
    code, out, _ = _run(["group", "settings", gid, "--json", *a], capsys)
    assert json.loads(out)["settings"] == {"members_can_edit": True, "join_approval": False}
    before = _server_group(alice_dir, gid)

    code, out, err = _run(
        ["group", "settings", "Hikers", "--members-can-edit", "no", "--join-approval", "yes", *no],
        capsys,
    )
    assert code == Exit.OK, err
    assert out.splitlines() == [
        "Changed the settings of Hikers:",
        "Members can edit the group info: no (admins only)",
        "Admins approve new members: yes",
    ]
    after = _server_group(alice_dir, gid)
    assert (after.settings.members_can_edit, after.settings.join_approval) == (False, True)
    assert after.revision == before.revision + 2 and after.state_revision == after.revision
    key = Client(alice_dir)._store.state_key(gid, blob_epoch(after.state))
    assert key is not None
    assert open_group_state(key, gid, after.state_revision, after.state).settings == after.settings
    assert _queued_actions(alice_dir, gid)[-1] == "settings"

    # One option changes one setting; the other stays.
    code, out, err = _run(
        ["group", "settings", gid, "--join-approval", "no", "--no-send", "--json", *a], capsys
    )
    assert code == Exit.OK, err
    assert json.loads(out)["settings"] == {"members_can_edit": False, "join_approval": False}

    # A member is refused in one sentence, before the server is asked.
    code, out, err = _run(["group", "settings", gid, "--join-approval", "yes", *b], capsys)
    assert code != Exit.OK
    assert "only admins can change the settings" in err and "Traceback" not in err
    assert _server_group(alice_dir, gid).settings.join_approval is False

    # A value other than yes or no is argparse's refusal (exit 2), naming the choices.
    with pytest.raises(SystemExit) as bad:
        main(["group", "settings", gid, "--join-approval", "maybe", *a])
    assert bad.value.code == 2
    assert "choose from" in capsys.readouterr().err


def test_group_invite_revoke_turns_the_link_off(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice_dir = tmp_path / "alice"
    register(server, alice_dir)
    a = ["--profile", str(alice_dir)]
    code, out, err = _run(["group", "create", "Climbers", "--no-send", "--json", *a], capsys)
    assert code == Exit.OK, err
    gid = json.loads(out)["id"]
    code, out, err = _run(["group", "invite", gid, "--json", *a], capsys)
    assert code == Exit.OK, err
    assert json.loads(out)["invite"].startswith("porch://group?token=")
    assert _server_group(alice_dir, gid).invite is True
    code, out, err = _run(["group", "invite", gid, "--revoke", *a], capsys)
    assert code == Exit.OK, err
    assert out.strip() == "The invite link is off."
    assert _server_group(alice_dir, gid).invite is False
