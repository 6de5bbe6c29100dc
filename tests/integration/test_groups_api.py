"""Groups over HTTP against a real server (spec B): roles, settings, revisions, limits,
invites, join requests, the group_changed hint, and hostile input. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from porch.client import Client
from tests.integration.server import ServerProcess

MAX_MEMBERS = 4
STATE = base64.b64encode(b"\x01sealed-state").decode()


@pytest.fixture
def server(tmp_path: Path, server_env: dict[str, str]) -> Iterator[ServerProcess]:
    env = {**server_env, "PORCH_MAX_GROUP_MEMBERS": str(MAX_MEMBERS)}
    srv = ServerProcess(tmp_path / "server-data", env=env)
    srv.start()
    yield srv
    srv.stop()


class Api:
    """One account's HTTP client, answering (status, json)."""

    def __init__(self, server: ServerProcess, client: Client) -> None:
        self.id = client.account_id
        self.client = client
        self.http = httpx.AsyncClient(base_url=server.url, auth=client.credentials.basic())

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        r = await self.http.request(method, path, **kw)
        return r.status_code, (r.json() if r.content else None)

    async def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        got, body = await self.call(method, path, **kw)
        assert got == status, body
        return body

    async def refused(self, method: str, path: str, status: int, code: str, **kw: Any) -> Any:
        got, body = await self.call(method, path, **kw)
        assert got == status, body
        assert body["error"]["code"] == code, body
        assert body["error"]["message"]
        return body["error"]


async def accounts(register_client, server: ServerProcess, n: int) -> list[Api]:  # type: ignore[no-untyped-def]
    return [Api(server, await register_client()) for _ in range(n)]


async def create(api: Api, members: list[Api], **settings: bool) -> dict[str, Any]:
    body = {
        "id": str(uuid.uuid4()),
        "state": STATE,
        "settings": {"members_can_edit": False, "join_approval": False, **settings},
        "members": [m.id for m in members],
    }
    group: dict[str, Any] = await api.ok("POST", "/v1/groups", 201, json=body)
    return group


def roles(group: dict[str, Any]) -> dict[str, str]:
    return {m["account"]: m["role"] for m in group["members"]}


async def test_roles_settings_revisions_and_limits(register_client, server) -> None:  # type: ignore[no-untyped-def]
    alice, bob, carol, dan, erin = await accounts(register_client, server, 5)
    g = await create(alice, [bob])
    gid, path = g["id"], f"/v1/groups/{g['id']}"
    assert g["revision"] == 1 and g["state_revision"] == 1 and g["state"] == STATE
    assert roles(g) == {alice.id: "admin", bob.id: "member"}
    assert g["pending"] == [] and g["invite"] is False
    assert await bob.ok("GET", path) == g
    assert await bob.ok("GET", "/v1/groups") == {"groups": [{"id": gid, "revision": 1}]}
    assert await carol.ok("GET", "/v1/groups") == {"groups": []}

    # A non-member gets the 404 of an unknown group on every route.
    for method, sub, kw in [
        ("GET", "", {}),
        ("PUT", "/state", {"json": {"revision": 1, "state": STATE}}),
        ("PUT", "/settings", {"json": {"revision": 1, "settings": g["settings"]}}),
        ("POST", "/members", {"json": {"revision": 1, "accounts": [carol.id]}}),
        ("DELETE", f"/members/{bob.id}", {"params": {"revision": 1}}),
        ("PUT", f"/members/{bob.id}/role", {"json": {"revision": 1, "role": "admin"}}),
        ("POST", "/leave", {}),
        ("POST", "/invite", {}),
        ("DELETE", "/invite", {}),
        ("POST", f"/requests/{carol.id}", {"json": {"approve": True}}),
    ]:
        unknown = await carol.refused(method, path + sub, 404, "not_found", **kw)
        other = await carol.refused(
            method, f"/v1/groups/{uuid.uuid4()}{sub}", 404, "not_found", **kw
        )
        assert unknown["message"] == other["message"]

    # members_can_edit false: a member may neither add nor change the state; nor remove an admin.
    await bob.refused(
        "POST", path + "/members", 403, "forbidden", json={"revision": 1, "accounts": [carol.id]}
    )
    await bob.refused(
        "PUT", path + "/state", 403, "forbidden", json={"revision": 1, "state": STATE}
    )
    await bob.refused(
        "DELETE", f"{path}/members/{alice.id}", 403, "forbidden", params={"revision": 1}
    )
    await bob.refused(
        "PUT", path + "/settings", 403, "forbidden", json={"revision": 1, "settings": g["settings"]}
    )

    # Settings by the admin; then members may edit, but still not remove an admin.
    new = {"members_can_edit": True, "join_approval": False}
    g = await alice.ok("PUT", path + "/settings", json={"revision": 1, "settings": new})
    assert g["revision"] == 2 and g["settings"] == new and g["state_revision"] == 1
    await bob.refused(
        "DELETE", f"{path}/members/{alice.id}", 403, "forbidden", params={"revision": 2}
    )
    # A stale revision is a conflict, with the current one.
    err = await bob.refused(
        "PUT", path + "/state", 409, "revision_conflict", json={"revision": 1, "state": STATE}
    )
    assert err["revision"] == 2
    g = await bob.ok("PUT", path + "/state", json={"revision": 2, "state": "AQID"})
    assert g["revision"] == 3 and g["state_revision"] == 3 and g["state"] == "AQID"
    g = await bob.ok("POST", path + "/members", json={"revision": 3, "accounts": [carol.id]})
    assert g["revision"] == 4 and roles(g)[carol.id] == "member"

    # Group full at PORCH_MAX_GROUP_MEMBERS: 3 members + 2 is one too many; + 1 fits.
    await alice.refused(
        "POST",
        path + "/members",
        409,
        "group_full",
        json={"revision": 4, "accounts": [dan.id, erin.id]},
    )
    g = await alice.ok("POST", path + "/members", json={"revision": 4, "accounts": [dan.id]})
    assert len(g["members"]) == MAX_MEMBERS
    await alice.refused(
        "POST", path + "/members", 409, "group_full", json={"revision": 5, "accounts": [erin.id]}
    )
    # A member removes a member; an account that is not a member is 404.
    g = await bob.ok("DELETE", f"{path}/members/{dan.id}", params={"revision": 5})
    assert dan.id not in roles(g) and g["revision"] == 6
    await dan.refused("GET", path, 404, "not_found")
    await alice.refused(
        "DELETE", f"{path}/members/{dan.id}", 404, "not_found", params={"revision": 6}
    )

    # Roles: the last admin cannot be demoted; a promoted member may act as admin.
    await alice.refused(
        "PUT",
        f"{path}/members/{alice.id}/role",
        409,
        "last_admin",
        json={"revision": 6, "role": "member"},
    )
    await bob.refused(
        "PUT",
        f"{path}/members/{carol.id}/role",
        403,
        "forbidden",
        json={"revision": 6, "role": "admin"},
    )
    g = await alice.ok(
        "PUT", f"{path}/members/{carol.id}/role", json={"revision": 6, "role": "admin"}
    )
    assert roles(g) == {alice.id: "admin", bob.id: "member", carol.id: "admin"}
    g = await carol.ok(
        "PUT", f"{path}/members/{alice.id}/role", json={"revision": 7, "role": "member"}
    )
    assert roles(g)[alice.id] == "member"

    # The last admin leaves: the longest-standing member (alice, then bob) becomes admin.
    assert (await carol.call("POST", path + "/leave"))[0] == 204
    g = await alice.ok("GET", path)
    assert roles(g) == {alice.id: "admin", bob.id: "member"}
    await carol.refused("GET", path, 404, "not_found")
    assert (await alice.call("POST", path + "/leave"))[0] == 204
    assert roles(await bob.ok("GET", path)) == {bob.id: "admin"}
    assert (await bob.call("POST", path + "/leave"))[0] == 204  # the last one: the group goes
    assert await bob.ok("GET", "/v1/groups") == {"groups": []}


async def test_invites_and_join_approval(register_client, server) -> None:  # type: ignore[no-untyped-def]
    alice, bob, carol, dan = await accounts(register_client, server, 4)
    g = await create(alice, [bob])
    path = f"/v1/groups/{g['id']}"
    await bob.refused("POST", path + "/invite", 403, "forbidden")
    token = (await alice.ok("POST", path + "/invite"))["token"]
    assert len(token) == 43 and (await bob.ok("GET", path))["invite"] is True
    joined = await carol.ok("POST", "/v1/groups/join", json={"token": token})
    assert joined["status"] == "joined" and carol.id in roles(joined["group"])
    # Joining again changes nothing; a new token replaces the old one; a revoked one is 404.
    again = await carol.ok("POST", "/v1/groups/join", json={"token": token})
    assert again["group"]["revision"] == joined["group"]["revision"]
    fresh = (await alice.ok("POST", path + "/invite"))["token"]
    await dan.refused("POST", "/v1/groups/join", 404, "not_found", json={"token": token})
    assert (await alice.call("DELETE", path + "/invite"))[0] == 204
    await dan.refused("POST", "/v1/groups/join", 404, "not_found", json={"token": fresh})
    assert (await alice.ok("GET", path))["invite"] is False

    # With join approval, a joiner waits (seen by admins only) until an admin approves.
    g = await alice.ok("GET", path)
    settings = {"members_can_edit": False, "join_approval": True}
    await alice.ok(
        "PUT", path + "/settings", json={"revision": g["revision"], "settings": settings}
    )
    token = (await alice.ok("POST", path + "/invite"))["token"]
    pending = await dan.ok("POST", "/v1/groups/join", json={"token": token})
    assert pending == {"status": "pending", "group_id": g["id"]}
    await dan.refused("GET", path, 404, "not_found")
    assert (await alice.ok("GET", path))["pending"] == [dan.id]
    assert (await bob.ok("GET", path))["pending"] == []
    await bob.refused("POST", f"{path}/requests/{dan.id}", 403, "forbidden", json={"approve": True})
    await alice.refused(
        "POST", f"{path}/requests/{bob.id}", 404, "not_found", json={"approve": True}
    )
    g = await alice.ok("POST", f"{path}/requests/{dan.id}", json={"approve": True})
    assert roles(g)[dan.id] == "member" and g["pending"] == []
    assert (await dan.ok("GET", path))["id"] == g["id"]


async def test_connected_members_get_group_changed(register_client, server) -> None:  # type: ignore[no-untyped-def]
    alice, bob, carol = await accounts(register_client, server, 3)
    g = await create(alice, [bob])
    c = bob.client.credentials
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/v1/ws") as ws:
        auth = {
            "type": "auth",
            "account": c.account_id,
            "device": c.device_id,
            "password": c.password,
        }
        await ws.send(json.dumps(auth))

        async def next_group_changed() -> dict[str, Any]:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame["type"] == "group_changed":
                    return frame  # type: ignore[no-any-return]

        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "drained":
            pass
        g = await alice.ok(
            "PUT", f"/v1/groups/{g['id']}/state", json={"revision": 1, "state": STATE}
        )
        assert await next_group_changed() == {
            "type": "group_changed",
            "group": g["id"],
            "revision": 2,
        }
        # Removed: the removed member hears of it too (it was a member before the change).
        await alice.ok("DELETE", f"/v1/groups/{g['id']}/members/{bob.id}", params={"revision": 2})
        assert (await next_group_changed())["revision"] == 3
        # A change to a group bob is not in says nothing to him.
        other = await create(alice, [carol])
        await alice.ok(
            "PUT", f"/v1/groups/{other['id']}/state", json={"revision": 1, "state": STATE}
        )
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(next_group_changed(), 1.0)


async def test_hostile_inputs_get_structured_errors(register_client, server) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await accounts(register_client, server, 2)
    g = await create(alice, [bob])
    other = await create(bob, [])
    path = f"/v1/groups/{g['id']}"
    bad = [
        ("PUT", path + "/state", {"json": {"revision": 2**63, "state": STATE}}),
        ("PUT", path + "/state", {"json": {"revision": 2**53, "state": STATE}}),
        ("PUT", path + "/state", {"json": {"revision": "1", "state": STATE}}),
        ("PUT", path + "/state", {"json": {"revision": 1, "state": "A" * 10_000 + "!"}}),
        ("PUT", path + "/state", {"json": {"revision": 1, "state": "A" * 12_000}}),
        ("PUT", path + "/state", {"json": {"revision": 1, "state": STATE, "extra": 1}}),
        (
            "POST",
            path + "/members",
            {"json": {"revision": 1, "accounts": [str(uuid.uuid4()) for _ in range(1001)]}},
        ),
        ("POST", path + "/members", {"json": {"revision": 1, "accounts": ["not-a-uuid"]}}),
        ("POST", path + "/members", {"json": {"revision": 1, "accounts": []}}),
        ("GET", "/v1/groups/not-a-uuid", {}),
        ("GET", f"/v1/groups/{g['id'].upper()}", {}),
        ("DELETE", f"{path}/members/{bob.id}", {"params": {"revision": 2**63}}),
        ("DELETE", f"{path}/members/{bob.id}", {}),
        ("PUT", f"{path}/members/{bob.id}/role", {"json": {"revision": 1, "role": "owner"}}),
        ("POST", "/v1/groups/join", {"json": {"token": "x" * 44}}),
        ("POST", f"{path}/requests/{bob.id}", {"json": {"approve": "yes"}}),
        ("POST", "/v1/groups", {"json": {"id": "nope", "state": STATE, "settings": g["settings"]}}),
    ]
    for method, where, kw in bad:
        status, body = await alice.call(method, where, **kw)
        assert status in (400, 404), (where, kw, body)
        assert body["error"]["code"] in ("bad_request", "not_found") and body["error"]["message"]
    # A state that decodes to more than 8225 bytes; a valid id of a group alice is not in.
    big = base64.b64encode(b"x" * 8226).decode()
    await alice.refused(
        "PUT", path + "/state", 400, "bad_request", json={"revision": 1, "state": big}
    )
    await alice.refused("GET", f"/v1/groups/{other['id']}", 404, "not_found")
    await alice.refused(
        "POST",
        f"/v1/groups/{other['id']}/members",
        404,
        "not_found",
        json={"revision": 1, "accounts": [alice.id]},
    )
    # Unknown or keyless accounts are 404 naming nothing; an existing id is 409.
    await alice.refused(
        "POST",
        path + "/members",
        404,
        "not_found",
        json={"revision": 1, "accounts": [str(uuid.uuid4())]},
    )
    body = {"id": g["id"], "state": STATE, "settings": g["settings"], "members": []}
    await bob.refused("POST", "/v1/groups", 409, "group_exists", json=body)
    # Nothing of the refused calls changed the group.
    assert (await alice.ok("GET", path))["revision"] == 1
