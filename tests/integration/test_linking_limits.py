"""What one address can hold open while linking, and removing devices that are not there:
each a structured error, and the server goes on delivering (found trying the features)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from porch.client import Client
from porch.client.errors import ServerError, UsageError
from porch.client.linking import listed_devices
from porch.crypto.signing import MasterKey, device_list_payload
from porch.protocol.codec import b64encode
from porch.server.services.devices import MAX_LIST_STEP, MAX_WAITS_PER_ADDRESS
from tests.integration.server import ServerProcess
from tests.integration.test_linking import message


async def test_one_address_holds_a_few_long_polls_and_messages_still_flow(
    server: ServerProcess, register_client
) -> None:
    alice = await register_client()
    bob = await register_client()
    limits = httpx.Limits(max_connections=MAX_WAITS_PER_ADDRESS + 4)
    async with alice, bob, httpx.AsyncClient(timeout=20, limits=limits) as http:
        channel = (await http.post(f"{server.url}/v1/provisioning")).json()["id"]
        url = f"{server.url}/v1/provisioning/{channel}"
        waits = [
            asyncio.create_task(http.get(url, params={"wait": 3}))
            for _ in range(MAX_WAITS_PER_ADDRESS)
        ]
        await asyncio.sleep(1.0)  # all of them are waiting now
        refused = await http.get(url, params={"wait": 3})
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["code"] == "rate_limited"
        assert error["limit"] == MAX_WAITS_PER_ADDRESS
        assert "device-linking waits open from this address" in error["message"]
        await alice.send_text(bob.account_id, "still here")  # the node still delivers
        assert (await message(bob)).text == "still here"
        assert [r.status_code for r in await asyncio.gather(*waits)] == [204] * len(waits)
        # The waits that ended are counted out: the next one is taken again.
        assert (await http.get(url, params={"wait": 0})).status_code == 204


async def test_removing_an_unknown_device_or_oneself_says_what_to_do(
    server: ServerProcess, register_client
) -> None:
    alice = await register_client()
    async with alice:
        with pytest.raises(ServerError) as unknown:
            await alice.api.delete_device(77)
        assert unknown.value.code == "not_found"
        assert "no device 77; see its devices with `porch devices`" in str(unknown.value)
        with pytest.raises(ServerError) as itself:
            await alice.api.delete_device(alice.device_id)
        assert itself.value.code == "forbidden"
        assert "remove it from another device of the account" in str(itself.value)


async def test_a_device_list_cannot_jump_to_the_last_version(register_client) -> None:
    alice = await register_client()
    try:
        keys = await alice.api.get_keys(alice.account_id)
        version, listed = listed_devices(keys, keys.master_key)
        seed = alice._store.get_secret("master_key")
        assert seed is not None
        master = MasterKey.from_private_bytes(seed)
        for far in (2**63 - 1, version + MAX_LIST_STEP + 1):
            payload = device_list_payload(alice.account_id, far, listed)
            with pytest.raises(ServerError) as jumped:
                await alice.api.put_device_list(b64encode(payload), master.sign(payload))
            assert jumped.value.code == "bad_request"
            assert jumped.value.details["version"] == version
            assert f"the next device list is version {version + 1}" in str(jumped.value)
        # The largest step is still taken, and the next list follows it.
        for step in (MAX_LIST_STEP, MAX_LIST_STEP + 1):
            payload = device_list_payload(alice.account_id, version + step, listed)
            await alice.api.put_device_list(b64encode(payload), master.sign(payload))
    finally:
        await alice.aclose()


async def test_a_long_device_name_is_refused_before_a_channel_opens(
    server: ServerProcess, tmp_path: Path
) -> None:
    shown: list[str] = []
    with pytest.raises(UsageError, match="at most 64 characters"):
        await Client.link(server.url, tmp_path / "new", name="n" * 65, show_uri=shown.append)
    assert shown == []
    assert not (tmp_path / "new" / "profile.json").exists()
