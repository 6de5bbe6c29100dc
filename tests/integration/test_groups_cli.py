"""`porch group` as real subprocesses against a real server (spec B, E): each change lands on
the server (checked through GroupApi) and queues the expected contents for ``g:<group id>``;
mistakes end in one sentence and a non-zero exit, never a traceback.

Most commands here run with --no-send (delivery is test_groups_e2e.py's); one test sends a
group text for real and reads it on a member's `porch recv --json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from porch.client import Client
from porch.client.group_api import Group, GroupApi
from porch.crypto.content import Content, GroupStateKey, GroupUpdate, decode_content
from porch.crypto.group_state import blob_epoch
from tests.integration.test_profiles import porch


@pytest.fixture
def server_env() -> Iterator[dict[str, str]]:
    # The CLI logic is the same on both backends; the routes' own tests run on PostgreSQL.
    yield {}


async def server_group(client: Client, gid: str) -> Group:
    async with client:
        return await GroupApi(client.api).get(gid)


async def queued(client: Client, gid: str) -> list[Content]:
    """What waits in the profile's outbox for the group, oldest first."""
    fresh = Client(client.profile_dir)  # the CLI wrote it; read it as it is now
    try:
        entries = fresh.outbox()
    finally:
        await fresh.aclose()
    return [decode_content(e.content) for e in entries if e.recipient == f"g:{gid}"]


async def updates(client: Client, gid: str) -> list[tuple[str, tuple[str, ...]]]:
    contents = await queued(client, gid)
    return [(c.action, c.targets) for c in contents if isinstance(c, GroupUpdate)]


async def ok(profile: Path, *args: str) -> str:
    code, out, err = await porch(profile, "group", *args, "--no-send")
    assert code == 0, err
    assert "Traceback" not in err
    return out


async def refused(profile: Path, code: int, text: str, *args: str) -> None:
    got, out, err = await porch(profile, *args)
    assert got == code, (got, out, err)
    # One sentence (argparse's own refusals come after its usage lines).
    lines = err.strip().splitlines()
    assert text in lines[-1] and lines[-1].startswith("porch"), err
    assert "Traceback" not in err and sum(ln.startswith("porch") for ln in lines) == 1, err


async def test_group_lifecycle_through_the_cli(register_client) -> None:  # type: ignore[no-untyped-def]
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    carol = await register_client(username="carol")
    dave = await register_client(username="dave")
    a = alice.profile_dir

    out = await ok(a, "create", "Hikers", "--member", "@bob", "--member", "@carol", "--json")
    created = json.loads(out)
    gid = created["id"]
    assert created["name"] == "Hikers" and created["role"] == "admin"
    group = await server_group(alice, gid)
    assert group.revision == 1
    assert {(m.account, m.role) for m in group.members} == {
        (alice.account_id, "admin"),
        (bob.account_id, "member"),
        (carol.account_id, "member"),
    }
    contents = await queued(alice, gid)
    assert isinstance(contents[0], GroupStateKey) and contents[0].epoch == 0
    assert (await updates(alice, gid)) == [("create", (bob.account_id, carol.account_id))]

    out = await ok(a, "info", gid[:6])
    assert "Hikers" in out and "@bob" in out and "@carol" in out
    assert "admin" in out and out.count("member") >= 2

    await ok(a, "remove", gid[:8], "@carol", "--yes")
    group = await server_group(alice, gid)
    assert group.role_of(carol.account_id) is None
    assert blob_epoch(group.state) == 1  # a new key after a removal
    keys = [c for c in (await queued(alice, gid)) if isinstance(c, GroupStateKey)]
    assert [k.epoch for k in keys] == [0, 1]
    assert (await updates(alice, gid))[-1] == ("remove", (carol.account_id,))

    await ok(a, "add", gid, "@carol")
    assert (await server_group(alice, gid)).role_of(carol.account_id) == "member"
    assert (await updates(alice, gid))[-1] == ("add", (carol.account_id,))

    await ok(a, "promote", "Hikers", "@bob")
    assert (await server_group(alice, gid)).role_of(bob.account_id) == "admin"
    await ok(a, "demote", "Hikers", "@bob")
    assert (await server_group(alice, gid)).role_of(bob.account_id) == "member"
    assert [u[0] for u in (await updates(alice, gid))][-2:] == ["promote", "demote"]

    link = json.loads(await ok(a, "invite", gid, "--json"))["invite"]
    assert link.startswith("porch://group?token=") and "#key=" in link
    assert (await server_group(alice, gid)).invite is True
    joined = json.loads(await ok(dave.profile_dir, "join", link, "--json"))
    assert joined["id"] == gid and joined["name"] == "Hikers"  # the link's key opens it
    assert (await server_group(alice, gid)).role_of(dave.account_id) == "member"
    assert (await updates(dave, gid)) == [("join", ())]

    out = await ok(dave.profile_dir, "list")
    assert "Hikers" in out and gid[:8] in out
    assert (await ok(dave.profile_dir, "leave", gid, "--yes")).strip() == "You left Hikers."
    assert (await server_group(alice, gid)).role_of(dave.account_id) is None
    assert (await updates(dave, gid))[-1] == ("leave", ())

    again = await ok(a, "invite", gid)
    assert "replaces the previous one, which no longer works" in again
    await refused(
        dave.profile_dir, 4, "ask an admin of the group for a new one", "group", "join", link
    )
    await ok(a, "invite", gid, "--revoke")
    assert (await server_group(alice, gid)).invite is False
    await refused(dave.profile_dir, 4, "invite", "group", "join", link)


async def test_group_mistakes_end_in_one_sentence(register_client) -> None:  # type: ignore[no-untyped-def]
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    await register_client(username="carol")
    a = alice.profile_dir
    out = await ok(a, "create", "Quiet", "--member", "@bob", "--admins-only", "--json")
    gid = json.loads(out)["id"]
    await ok(a, "create", "Twin", "--member", "@bob")
    await ok(a, "create", "Twin", "--member", "@bob")

    await refused(a, 2, "no group of yours matches", "group", "info", "ffffff")
    await refused(a, 2, "matches 2 groups", "group", "info", "Twin")
    await refused(a, 4, "nobody on this server is @nobody", "group", "add", gid, "@nobody")
    await refused(a, 2, "not a member", "group", "remove", gid, "@carol", "--yes")
    await refused(a, 2, "in Quiet already", "group", "add", gid, "@bob")
    await refused(bob.profile_dir, 4, "only admins", "group", "add", gid, "@carol")
    await refused(a, 2, "not a usable group link", "group", "join", "porch://group?token=x")
    await refused(a, 2, "not allowed with", "send", "--to", "@bob", "--group", gid, "hi")
    await refused(a, 2, "no group of yours matches", "send", "--group", "nope", "hi")
    unknown = "00000000-0000-4000-8000-000000000000"
    await refused(a, 4, "knows no group", "group", "info", unknown)
    await refused(a, 3, "", "group", "list", "--server", "http://127.0.0.1:9")


async def test_a_group_text_sent_from_the_cli_reaches_a_member(register_client) -> None:  # type: ignore[no-untyped-def]
    # For real this time (no --no-send): the create's contents and the text are delivered.
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    code, out, err = await porch(
        alice.profile_dir, "group", "create", "Hikers", "--member", "@bob", "--json"
    )
    assert code == 0, err
    gid = json.loads(out)["id"]
    code, out, err = await porch(alice.profile_dir, "send", "--group", "Hikers", "hello hikers")
    assert code == 0, err
    assert not (await queued(alice, gid))  # everything for the group left the outbox
    code, out, err = await porch(bob.profile_dir, "recv", "--wait", "3", "--json")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    texts = [r for r in records if r.get("text") == "hello hikers"]
    assert len(texts) == 1, records
    assert texts[0]["group"] == gid and texts[0]["from"] == alice.account_id
    # Bob had not fetched the group before its first text: it is named all the same.
    assert texts[0]["from_label"] == "Hikers/@alice", texts[0]
    assert not [r for r in records if r.get("event") == "undecryptable"], records
