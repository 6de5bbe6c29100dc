"""Parsing the server's group answers (spec B) with their bounds, and the calls' requests.

The server is played by an httpx transport function: what is tested is how this client reads
answers (a hostile server included) and what it asks, not the server.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from porch.client.api import HttpApi
from porch.client.errors import ServerError, UsageError
from porch.client.group_api import (
    MAX_GROUP_MEMBERS,
    GroupApi,
    GroupMember,
    parse_group,
    parse_group_list,
    parse_join,
    parse_token,
)
from porch.crypto.group_state import MAX_BLOB_BYTES, GroupSettings
from porch.protocol.codec import b64encode

G, A, B = (str(uuid.uuid4()) for _ in range(3))
TOKEN = "A" * 43


def group_json(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": G,
        "revision": 2,
        "state_revision": 1,
        "state": b64encode(b"\x01blob"),
        "settings": {"members_can_edit": True, "join_approval": False},
        "members": [{"account": A, "role": "admin"}, {"account": B, "role": "member"}],
        "pending": [],
        "invite": False,
    }
    obj.update(changes)
    return obj


def test_a_group_parses() -> None:
    group = parse_group(group_json(pending=[B], invite=True))
    assert group.id == G and group.revision == 2 and group.state == b"\x01blob"
    assert group.settings == GroupSettings(members_can_edit=True, join_approval=False)
    assert group.members == (GroupMember(A, "admin"), GroupMember(B, "member"))
    assert group.pending == (B,) and group.invite is True and group.state_revision == 1
    assert group.role_of(A) == "admin" and group.role_of(G) is None


def test_a_hostile_servers_million_members_are_refused() -> None:
    members = [{"account": A, "role": "member"}] * 1_000_000
    with pytest.raises(ServerError) as err:
        parse_group(group_json(members=members))
    assert err.value.code == "bad_response" and str(MAX_GROUP_MEMBERS) in str(err.value)
    with pytest.raises(ServerError):
        parse_group(group_json(pending=[A] * (MAX_GROUP_MEMBERS + 1)))
    with pytest.raises(ServerError):
        parse_group_list({"groups": [{"id": G, "revision": 1}] * 1_000_000})


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "../../v1/keys"},
        {"revision": -1},
        {"revision": 2**53},
        {"revision": "2"},
        {"revision": True},
        {"state": "not base64!"},
        {"state": b64encode(b"x" * (MAX_BLOB_BYTES + 1))},
        {"state": ""},
        {"settings": {"members_can_edit": 1, "join_approval": False}},
        {"settings": None},
        {"members": [{"account": A, "role": "owner"}]},
        {"members": [{"account": "alice", "role": "admin"}]},
        {"members": [{"account": A, "role": "admin"}, {"account": A, "role": "member"}]},
        {"members": {"account": A}},
        {"pending": ["x"]},
        {"invite": "yes"},
    ],
)
def test_malformed_groups_are_refused_in_words(changes: dict[str, Any]) -> None:
    with pytest.raises(ServerError) as err:
        parse_group(group_json(**changes))
    assert err.value.code == "bad_response" and "malformed" in str(err.value)


def test_missing_fields_are_refused() -> None:
    for name in group_json():
        obj = group_json()
        del obj[name]
        with pytest.raises(ServerError):
            parse_group(obj)
    with pytest.raises(ServerError):
        parse_group([])


def test_join_answers_and_tokens() -> None:
    joined = parse_join({"status": "joined", "group": group_json()})
    assert joined.status == "joined" and joined.group_id == G and joined.group is not None
    pending = parse_join({"status": "pending", "group_id": G})
    assert (pending.status, pending.group_id, pending.group) == ("pending", G, None)
    with pytest.raises(ServerError):
        parse_join({"status": "maybe"})
    assert parse_token({"token": TOKEN}) == TOKEN
    for bad in ("short", "A" * 44, "A" * 42 + "+", None):
        with pytest.raises(ServerError):
            parse_token({"token": bad})


def _run(handler: Any, call: Any) -> Any:
    async def go() -> Any:
        api = HttpApi("http://porch.test", transport=httpx.MockTransport(handler))
        try:
            return await call(GroupApi(api))
        finally:
            await api.aclose()

    return asyncio.run(go())


def test_calls_send_what_spec_b_says() -> None:
    seen: list[tuple[str, str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, str(request.url.raw_path, "ascii"), body))
        if request.url.path.endswith("/leave") or (
            request.method == "DELETE" and "invite" in (request.url.path)
        ):
            return httpx.Response(204)
        if request.url.path.endswith("/invite"):
            return httpx.Response(200, json={"token": TOKEN})
        if request.url.path == "/v1/groups" and request.method == "GET":
            return httpx.Response(200, json={"groups": [{"id": G, "revision": 2}]})
        return httpx.Response(200, json=group_json())

    async def calls(api: GroupApi) -> None:
        settings = GroupSettings(members_can_edit=False, join_approval=True)
        await api.create(G, b"\x01blob", settings, [B])
        assert (await api.list_groups())[0].id == G
        await api.get(G)
        await api.put_state(G, 2, b"\x01new")
        await api.put_settings(G, 3, settings)
        await api.add_members(G, 4, [B])
        await api.remove_member(G, B, 5)
        await api.set_role(G, A, 6, "member")
        assert await api.create_invite(G) == TOKEN
        await api.revoke_invite(G)
        await api.answer_request(G, B, approve=True)
        await api.leave(G)

    _run(handler, calls)
    assert seen == [
        (
            "POST",
            "/v1/groups",
            {
                "id": G,
                "state": b64encode(b"\x01blob"),
                "settings": {"members_can_edit": False, "join_approval": True},
                "members": [B],
            },
        ),
        ("GET", "/v1/groups", None),
        ("GET", f"/v1/groups/{G}", None),
        ("PUT", f"/v1/groups/{G}/state", {"revision": 2, "state": b64encode(b"\x01new")}),
        (
            "PUT",
            f"/v1/groups/{G}/settings",
            {"revision": 3, "settings": {"members_can_edit": False, "join_approval": True}},
        ),
        ("POST", f"/v1/groups/{G}/members", {"revision": 4, "accounts": [B]}),
        ("DELETE", f"/v1/groups/{G}/members/{B}?revision=5", None),
        ("PUT", f"/v1/groups/{G}/members/{A}/role", {"revision": 6, "role": "member"}),
        ("POST", f"/v1/groups/{G}/invite", None),
        ("DELETE", f"/v1/groups/{G}/invite", None),
        ("POST", f"/v1/groups/{G}/requests/{B}", {"approve": True}),
        ("POST", f"/v1/groups/{G}/leave", None),
    ]


def test_server_errors_map_to_server_error_with_the_servers_code() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        error = {"code": "revision_conflict", "message": "the group changed"}
        return httpx.Response(409, json={"error": error})

    with pytest.raises(ServerError) as err:
        _run(handler, lambda api: api.put_state(G, 1, b"\x01"))
    assert (err.value.code, err.value.status) == ("revision_conflict", 409)


def test_bad_arguments_never_reach_the_server() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    for call in (
        lambda api: api.get("../keys"),
        lambda api: api.remove_member(G, "x/../y", 1),
        lambda api: api.add_members(G, 1, []),
        lambda api: api.add_members(G, 1, [B, B]),
        lambda api: api.add_members(G, 1, [str(uuid.uuid4()) for _ in range(1001)]),
        lambda api: api.put_state(G, -1, b"\x01"),
        lambda api: api.put_state(G, 1, b""),
        lambda api: api.set_role(G, A, 1, "owner"),
        lambda api: api.join("not a token"),
    ):
        with pytest.raises(UsageError):
            _run(handler, call)
