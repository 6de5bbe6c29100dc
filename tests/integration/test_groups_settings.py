"""Group settings and turning an invite link off through the SDK (porch.client.groups,
``Groups.set_settings`` and ``Groups.revoke_invite``) over a real server, on SQLite and on
PostgreSQL + Redis (the default ``server_env``).

The settings live twice (docs/protocol.md, "Groups" and "Sealed group state"): the server's
copy, which it enforces, and the sealed state's; a change keeps both in step and tells the
members with one ``settings`` update.
"""

from __future__ import annotations

import pytest

from porch.client import Client, GroupUpdated
from porch.client.errors import ServerError, UsageError
from porch.client.group_api import GroupApi
from porch.crypto.group_state import GroupSettings, blob_epoch, open_group_state
from tests.integration.test_groups_e2e import inboxes, until


def sealed_settings(client: Client, gid: str, group_state: bytes, revision: int) -> GroupSettings:
    """The settings inside the sealed state, opened with the key this profile holds."""
    key = client._store.state_key(gid, blob_epoch(group_state))
    assert key is not None
    return open_group_state(key, gid, revision, group_state).settings


def state_name(client: Client, gid: str) -> str | None:
    g = client._store.get_group(gid)
    return g.state.name if g is not None and g.state is not None else None


async def test_settings_change_on_the_server_and_in_the_sealed_state(register_client) -> None:  # type: ignore[no-untyped-def]
    a, b, c = (await register_client(), await register_client(), await register_client())
    async with a, b, c, inboxes({"b": b}) as box:
        created = await a.groups.create("Hikers", [b.account_id])
        gid = created.id
        assert created.settings == GroupSettings(members_can_edit=True, join_approval=False)
        await until(lambda: state_name(b, gid) == "Hikers", "b to open the state")

        # Nothing asked: nothing changes (same revision, nothing told).
        same = await a.groups.set_settings(gid)
        assert same.revision == created.revision

        info = await a.groups.set_settings(gid, join_approval=True)
        assert info.settings == GroupSettings(members_can_edit=True, join_approval=True)
        server = await GroupApi(a.api).get(gid)
        assert server.settings == info.settings
        # One revision for the server's settings, one for the state sealed with them.
        assert server.revision == created.revision + 2
        assert server.state_revision == server.revision
        assert sealed_settings(a, gid, server.state, server.state_revision) == info.settings

        def told() -> list[GroupUpdated]:
            return [
                e
                for e in box["b"].events
                if isinstance(e, GroupUpdated) and e.group == gid and e.action == "settings"
            ]

        await until(lambda: bool(told()), "b to be told of the settings")
        assert told()[0].by == a.account_id
        await until(
            lambda: (
                (g := b._store.get_group(gid)) is not None
                and g.settings.join_approval
                and g.state is not None
                and g.state.settings.join_approval
            ),
            "b to hold the new settings, both copies",
        )

        # A member may not change them: refused before the server is asked, in words.
        with pytest.raises(UsageError, match="only admins can change the settings"):
            await b.groups.set_settings(gid, join_approval=False)

        # With join approval on, joining by link waits for an admin.
        link = await a.groups.invite(gid)
        assert await c.groups.join(link) is None
        pending = await a.groups.info(gid)
        assert pending.pending == (c.account_id,)
        approved = await a.groups.answer(gid, c.account_id, True)
        assert c.account_id in {m for m, _ in approved.members}


async def test_members_cannot_rename_when_only_admins_edit(register_client) -> None:  # type: ignore[no-untyped-def]
    a, b = await register_client(), await register_client()
    async with a, b:
        gid = (await a.groups.create("Hikers", [b.account_id])).id
        await until(lambda: state_name(b, gid) == "Hikers", "b to open the state")
        renamed = await b.groups.rename(gid, "Bob's hikers")  # members may edit: allowed
        assert renamed.name == "Bob's hikers"

        await a.groups.set_settings(gid, members_can_edit=False)
        with pytest.raises(ServerError) as refused:
            await b.groups.rename(gid, "Bob's group")
        assert refused.value.code == "forbidden"
        assert "only admins can change the name" in str(refused.value)
        assert "ask an admin" in str(refused.value)
        assert (await GroupApi(a.api).get(gid)).settings.members_can_edit is False
        # The admin still may.
        assert (await a.groups.rename(gid, "Hill walkers")).name == "Hill walkers"
        await until(lambda: state_name(b, gid) == "Hill walkers", "b to see the admin's name")


async def test_a_revoked_link_no_longer_joins(register_client) -> None:  # type: ignore[no-untyped-def]
    a, b = await register_client(), await register_client()
    async with a, b:
        gid = (await a.groups.create("Hikers", [])).id
        link = await a.groups.invite(gid)
        assert (await a.groups.info(gid)).invite is True
        off = await a.groups.revoke_invite(gid)
        assert off.invite is False
        with pytest.raises(ServerError) as refused:
            await b.groups.join(link)
        assert refused.value.code == "not_found"
        members = (await GroupApi(a.api).get(gid)).members
        assert [m.account for m in members] == [a.account_id]
