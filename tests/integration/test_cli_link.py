"""`porch link` and `porch devices` as real subprocesses (spec C): one process shows the URI
and waits, another approves it, then the linked profile receives, and removal revokes it."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

from porch.client import Client
from tests.integration.server import ServerProcess
from tests.integration.test_features import first_message
from tests.integration.test_profiles import porch

URI_RE = re.compile(r"porch devices link '(porch://link\?[^']+)'")


async def cli_link(server: ServerProcess, primary: Client, profile: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "porch.cli.main",
        "link",
        "--server",
        server.url,
        "--name",
        "phone",
        "--profile",
        str(profile),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    uri = None
    while uri is None:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, (await proc.stderr.read()).decode()
        found = URI_RE.search(line)
        uri = found.group(1) if found else None
    code, out, err = await porch(primary.profile_dir, "devices", "link", "not a uri", "--yes")
    assert code == 2 and "not a device-linking URI" in err
    code, out, err = await porch(primary.profile_dir, "devices", "link", uri)  # no terminal
    assert code == 2 and "--yes" in err
    code, out, err = await porch(primary.profile_dir, "devices", "link", uri, "--yes")
    assert code == 0, err
    assert "'phone'" in out
    rest, err_bytes = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err_bytes.decode()
    assert "Linked as device 2" in rest.decode()


async def test_cli_link_receive_and_remove(
    server: ServerProcess,
    register_client,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    alice = await register_client(username="alice")
    carol = await register_client(username="carol")
    second = tmp_path / "alice-phone"
    await cli_link(server, alice, second)
    code, out, err = await porch(second, "devices")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and "phone" in lines[1] and "(this device)" in lines[1]
    async with carol:
        await carol.send_text("@alice", "to both of you")
    code, out, err = await porch(second, "recv", "--wait", "2", "--json")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in records] == ["to both of you"]
    async with alice:
        assert (await first_message(alice)).text == "to both of you"
    code, out, err = await porch(alice.profile_dir, "devices", "remove", "2", "--yes")
    assert code == 0, err
    code, out, err = await porch(second, "whoami")
    assert (code == 4 and "auth_failed" in err) or "removed" in err, err
    code, out, err = await porch(alice.profile_dir, "devices")
    assert code == 0 and len(out.splitlines()) == 1
    # The removed device signs out all the same: nothing to ask the server, its profile goes.
    code, out, err = await porch(second, "devices", "leave", "--yes")
    assert code == 0, err
    assert "is no longer accepted by the server" in out
    assert not (second / "client.db").exists()


async def test_cli_link_sent_copy(
    server: ServerProcess,
    register_client,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """The linked device sees what the first one sent (spec D: sent copies). Fails until the
    seam1 branch (sent copies) is merged."""
    alice = await register_client(username="alice")
    carol = await register_client(username="carol")
    second = tmp_path / "alice-phone"
    await cli_link(server, alice, second)
    code, _, err = await porch(alice.profile_dir, "send", "--to", "@carol", "from my laptop")
    assert code == 0, err
    code, out, err = await porch(second, "recv", "--wait", "2", "--json")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert any(
        r.get("outgoing") is True
        and r.get("to") == carol.account_id
        and r["text"] == "from my laptop"
        for r in records
    ), records


async def test_cli_devices_leave(
    server: ServerProcess,
    register_client,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """`porch devices leave`: the only device is refused with what to do; a linked device
    leaves (the list without it in the same request), its profile is erased, and the account
    and its other device go on receiving."""
    alice = await register_client(username="alice")
    carol = await register_client(username="carol")
    code, out, err = await porch(alice.profile_dir, "devices", "leave", "--yes")
    assert code == 2 and "only device" in err and "Traceback" not in err, err
    code, out, err = await porch(alice.profile_dir, "devices", "remove", "1")  # no --yes
    assert code == 2 and "porch devices leave" in err, err
    assert (alice.profile_dir / "client.db").exists()
    second = tmp_path / "alice-phone"
    await cli_link(server, alice, second)
    (second / "notes.txt").write_text("mine")  # the user's own file stays
    code, out, err = await porch(second, "devices", "leave")  # no terminal: needs --yes
    assert code == 2 and "--yes" in err
    code, out, err = await porch(second, "devices", "leave", "--yes")
    assert code == 0, err
    assert "Device 2 left the account" in out
    assert sorted(p.name for p in second.iterdir()) == ["notes.txt"]
    code, out, err = await porch(second, "devices", "leave", "--yes")
    assert code != 0 and "no Porch profile" in err and "Traceback" not in err
    code, out, err = await porch(alice.profile_dir, "devices")
    assert code == 0 and len(out.splitlines()) == 1, out
    async with carol:
        await carol.send_text("@alice", "still here")
    async with alice:
        assert (await first_message(alice)).text == "still here"
