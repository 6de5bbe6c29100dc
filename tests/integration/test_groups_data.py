"""What the server stores of a group conversation (docs/security.md, "Server"): after messages,
a rename and a description, neither the group's name nor its description nor any text is in
the server's data (the SQLite file and its WAL; on PostgreSQL a dump of every table and the
WAL). The same grep finds a plaintext the server does store (a username), so it can fail."""

from __future__ import annotations

import subprocess
from pathlib import Path

from porch.client import Client
from tests.integration.server import ServerProcess
from tests.integration.test_groups_e2e import inboxes, member, until

NAME = "Secret Hikers 7f3q"
RENAMED = "Renamed Hikers 8x2w"
DESCRIPTION = "Meet at the hidden lake 9q2z"
TEXTS = ["group text alpha 4k1v", "group text beta 5m2c", "group text gamma 6n3d"]
USERNAME = "plainname4242"


def server_data(server: ServerProcess) -> dict[str, bytes]:
    blobs = {str(p): p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file()}
    database_url = server.env.get("PORCH_DATABASE_URL")
    if database_url:
        dump = subprocess.run(["pg_dump", database_url], capture_output=True, check=True)
        assert b"CREATE TABLE public.groups" in dump.stdout
        blobs["pg_dump"] = dump.stdout
        for wal in Path("/var/lib/postgresql").glob("*/main/pg_wal/0*"):
            blobs[str(wal)] = wal.read_bytes()
    else:
        assert any(name.endswith("porch.db") for name in blobs)
    return blobs


def found(blobs: dict[str, bytes], text: str) -> list[str]:
    return [name for name, data in blobs.items() if text.encode() in data]


async def test_no_group_plaintext_in_server_data(server: ServerProcess, register_client) -> None:
    alice = await register_client(username=USERNAME)
    bob = await register_client()
    carol: Client = await register_client()  # never online: her envelopes stay stored
    clients = {"alice": alice, "bob": bob}
    async with alice, bob, inboxes(clients) as box:
        info = await alice.groups.create(
            NAME, [bob.account_id, carol.account_id], description=DESCRIPTION
        )
        gid = info.id
        await until(lambda: member(bob, gid), "bob to hear of the group")
        await alice.wait_sent(alice.groups.send_text(gid, TEXTS[0]))
        await bob.wait_sent(bob.groups.send_text(gid, TEXTS[1]))
        await alice.groups.rename(gid, RENAMED)
        await alice.wait_sent(alice.groups.send_text(gid, TEXTS[2]))
        await until(
            lambda: {t for t, _ in box["bob"].texts(gid)} == {TEXTS[0], TEXTS[2]},
            "bob to get alice's texts",
        )
        await until(
            lambda: (
                (g := bob._store.get_group(gid)) is not None
                and g.state is not None
                and g.state.name == RENAMED
            ),
            "bob to see the new name",
        )
        running = server_data(server)  # with the WAL as it is while the server runs
    server.stop()
    stopped = server_data(server)
    for blobs in (running, stopped):
        # The grep works: the username is stored in plain by design.
        assert found(blobs, USERNAME), "the username should be in the server's data"
        for secret in (NAME, RENAMED, DESCRIPTION, *TEXTS):
            assert not found(blobs, secret), f"{secret!r} found in {found(blobs, secret)}"
