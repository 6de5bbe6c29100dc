"""`porch send --file`, `porch recv` and `porch download` as real subprocesses against a real
server (filesystem backend)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from porch.cli.exits import Exit
from tests.integration.conftest import register
from tests.integration.server import ServerProcess
from tests.integration.test_profiles import porch


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "server-data", env={"PORCH_MEDIA_MAX_BYTES": "2000000"})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
async def pair(server: ServerProcess, tmp_path: Path) -> tuple[Path, Path, str, str]:
    alice = await register(server, tmp_path / "alice")
    bob = await register(server, tmp_path / "bob")
    ids = alice.account_id, bob.account_id
    await alice.aclose()
    await bob.aclose()
    return tmp_path / "alice", tmp_path / "bob", *ids


async def test_send_a_file_then_recv_saves_it(
    pair: tuple[Path, Path, str, str], tmp_path: Path
) -> None:
    alice, bob, _, bob_id = pair
    payload = tmp_path / "report.pdf"
    payload.write_bytes(os.urandom(300_000))
    code, _, err = await porch(alice, "send", "--to", bob_id, "--file", str(payload), "the numbers")
    assert code == 0, err
    assert re.search(r"sent report\.pdf \(300 kB\) as \S+ at ", err), err
    code, out, err = await porch(bob, "recv", "--wait", "3")
    assert code == 0, err
    assert ": the numbers" in out
    saved = re.search(r"saved report\.pdf \(300 kB\): (.+)", out)
    assert saved, out
    path = Path(saved.group(1))
    assert path.parent == bob / "downloads"
    assert path.read_bytes() == payload.read_bytes()


async def test_no_download_lists_and_download_fetches_later(
    pair: tuple[Path, Path, str, str], tmp_path: Path
) -> None:
    alice, bob, alice_id, bob_id = pair
    payload = tmp_path / "voice.ogg"
    payload.write_bytes(os.urandom(5000))
    code, _, err = await porch(alice, "send", "--to", bob_id, "--file", str(payload))
    assert code == 0, err
    code, out, err = await porch(bob, "recv", "--wait", "3", "--no-download", "--json")
    assert code == 0, err
    record = next(json.loads(line) for line in out.splitlines() if "attachments" in line)
    (att,) = record["attachments"]
    assert (att["name"], att["size"]) == ("voice.ogg", 5000) and "path" not in att
    assert f"porch download {alice_id} {record['id']}" in att["line"]
    assert not (bob / "downloads").exists() or not any((bob / "downloads").iterdir())
    code, out, err = await porch(bob, "download", alice_id, "last")
    assert code == 0, err
    assert (bob / "downloads" / "voice.ogg").read_bytes() == payload.read_bytes()
    assert "saved voice.ogg" in out


async def test_mistakes_are_one_sentence(pair: tuple[Path, Path, str, str], tmp_path: Path) -> None:
    alice, _, _, bob_id = pair
    code, _, err = await porch(alice, "send", "--to", bob_id, "--file", str(tmp_path / "nope.jpg"))
    assert code == Exit.USAGE  # bad input (task M2, item 12)
    assert err.strip() == "porch: nope.jpg does not exist; check the path.", err
    code, _, err = await porch(alice, "send", "--to", bob_id, "--file", str(tmp_path))
    assert code == Exit.USAGE and "is a directory" in err and err.count("\n") == 1, err
    big = tmp_path / "movie.mp4"
    big.write_bytes(os.urandom(3_000_000))
    code, _, err = await porch(alice, "send", "--to", bob_id, "--file", str(big))
    assert code == Exit.REFUSED, err
    assert "the file is 3 MB; this server accepts attachments up to 2 MB" in err, err
    assert err.count("\n") == 1, err
    code, out, _ = await porch(alice, "outbox")
    assert bob_id not in out  # nothing was queued
