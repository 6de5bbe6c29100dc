"""Linked devices over a real server (spec C): linking through the SDK, the send check counting
the linked device, the device maximum, provisioning channels, forged device lists, removal."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from porch.client import Client, DevicesChanged, Message
from porch.client.api import HttpApi
from porch.client.errors import ClientError, ServerError, UsageError
from porch.client.linking import listed_devices
from porch.crypto.signing import ListedDevice, MasterKey, device_list_payload
from porch.protocol.codec import b64encode
from tests.integration.conftest import register
from tests.integration.server import ServerProcess


async def link_second(server: ServerProcess, primary: Client, profile: Path) -> Client:
    """Link profile to primary's account through the SDK, both sides, as the CLI does."""
    shown: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        Client.link(server.url, profile, name="phone", show_uri=shown.set_result, timeout=30)
    )
    uri = await asyncio.wait_for(shown, 10)
    assert "name=phone" in uri
    await primary.link_device(uri)
    config = await asyncio.wait_for(task, 20)
    assert config.account_id == primary.account_id
    return Client(profile)


async def message(client: Client, timeout: float = 15) -> Message:
    deadline = time.monotonic() + timeout
    while True:
        event = await client.next_event(max(0.01, deadline - time.monotonic()))
        assert event is not None, "no message arrived"
        if isinstance(event, Message):
            return event


def mismatches(server: ServerProcess) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    for line in text.splitlines():
        if line.startswith('porch_errors_total{code="mismatched_devices"}'):
            return float(line.split()[-1])
    return 0.0


async def test_a_linked_device_is_counted_and_receives(
    server: ServerProcess, register_client, tmp_path: Path
) -> None:
    alice = await register_client()
    bob = await register_client()
    async with alice, bob:
        await bob.send_text(alice.account_id, "before")  # bob knows device 1 only

        assert (await message(alice)).text == "before"
        alice2 = await link_second(server, alice, tmp_path / "alice-2")
        keys = await alice.api.get_keys(alice.account_id)
        version, listed = listed_devices(keys, keys.master_key)
        assert (version, [d.device_id for d in listed]) == (2, [1, 2])
        devices = await alice.devices()
        assert [(d["device_id"], d["name"]) for d in devices][1] == (2, "phone")
        before = mismatches(server)
        async with alice2:
            # Bob's cached device list (device 1 only) is refused; his client learns of device
            # 2, is told the list changed, and both of Alice's devices get the message.
            await bob.send_text(alice.account_id, "after")
            assert (await message(alice)).text == "after"
            assert (await message(alice2)).text == "after"
            assert mismatches(server) > before
            event = None
            deadline = time.monotonic() + 5
            while not isinstance(event, DevicesChanged) and time.monotonic() < deadline:
                event = await bob.next_event(0.5)
            assert event == DevicesChanged(alice.account_id, (2,), ())
            # The conversation says so too, as the safety-number notice does.
            notices = [m.text for m in bob.history(alice.account_id) if m.status == "notice"]
            assert len(notices) == 1 and "linked a new device" in notices[0], notices


async def test_too_many_devices(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "server", env={"PORCH_MAX_DEVICES": "2"})
    srv.start()
    try:
        alice = await register(srv, tmp_path / "alice")
        async with alice:
            first = await alice.api.provisioning_code()
            second = await alice.api.provisioning_code()  # one device yet: both allowed
            api = HttpApi(srv.url)
            try:
                linked = await api.link(first, "two")
                assert linked.device_id == 2
                with pytest.raises(ServerError) as refused:
                    await api.link(second, "three")
                assert refused.value.code == "too_many_devices"
                assert refused.value.status == 409
            finally:
                await api.aclose()
            with pytest.raises(ServerError) as no_code:
                await alice.api.provisioning_code()
            assert no_code.value.code == "too_many_devices"
    finally:
        srv.stop()


async def test_provisioning_channels(server: ServerProcess, register_client) -> None:
    alice = await register_client()
    api = HttpApi(server.url)
    try:
        channel = await api.open_channel()
        assert await api.wait_channel(channel, 0) is None  # 204: nothing yet
        started = time.monotonic()
        assert await api.wait_channel(channel, 1) is None
        assert time.monotonic() - started >= 0.9  # it waited
        waiting = asyncio.create_task(api.wait_channel(channel, 10))
        await asyncio.sleep(0.3)
        await alice.api.fill_channel(channel, b64encode(b"x" * 100))
        assert await asyncio.wait_for(waiting, 5) == b64encode(b"x" * 100)
        with pytest.raises(ServerError) as gone:  # read once, then deleted
            await api.wait_channel(channel, 0)
        assert gone.value.code == "not_found" and gone.value.status == 404
        other = await api.open_channel()
        await alice.api.fill_channel(other, b64encode(b"y"))
        with pytest.raises(ServerError) as filled:
            await alice.api.fill_channel(other, b64encode(b"z"))
        assert filled.value.code == "channel_filled" and filled.value.status == 409
        with pytest.raises(ServerError) as unknown:
            await alice.api.fill_channel("00000000-0000-4000-8000-000000000000", "eHg=")
        assert unknown.value.status == 404
        with pytest.raises(ServerError) as big:
            await alice.api.fill_channel(await api.open_channel(), b64encode(b"z" * 16385))
        assert big.value.status in (400, 413)
        with pytest.raises(ServerError) as bad_code:
            await api.link("not-a-code", "x")
        assert bad_code.value.code == "code_invalid"
    finally:
        await api.aclose()
        await alice.aclose()
    with pytest.raises(UsageError):
        await Client(alice.profile_dir).link_device("porch://link?uuid=nope&v=1")


async def test_forged_device_lists_are_refused(server: ServerProcess, register_client) -> None:
    alice = await register_client()
    try:
        keys = await alice.api.get_keys(alice.account_id)
        version, listed = listed_devices(keys, keys.master_key)
        assert version == 1  # registration published the first list
        payload = device_list_payload(alice.account_id, 2, listed)
        with pytest.raises(ServerError) as forged:  # signed by another key
            await alice.api.put_device_list(b64encode(payload), MasterKey.generate().sign(payload))
        assert forged.value.code == "bad_signature"
        seed = alice._store.get_secret("master_key")
        assert seed is not None
        master = MasterKey.from_private_bytes(seed)
        old = device_list_payload(alice.account_id, 1, listed)
        with pytest.raises(ServerError) as stale:  # not above the stored version
            await alice.api.put_device_list(b64encode(old), master.sign(old))
        assert stale.value.code == "stale_device_list" and stale.value.details["version"] == 1
        ghost = device_list_payload(
            alice.account_id, 2, [*listed, ListedDevice(9, 1, listed[0].ed25519)]
        )
        with pytest.raises(ServerError) as unknown:
            await alice.api.put_device_list(b64encode(ghost), master.sign(ghost))
        assert unknown.value.code == "bad_request"
        await alice.api.put_device_list(b64encode(payload), master.sign(payload))
    finally:
        await alice.aclose()


async def test_a_device_leaves_with_the_list_without_it(
    server: ServerProcess, register_client, tmp_path: Path
) -> None:
    """POST /v1/devices/leave (the browser's "Sign out"): the caller's next list must leave it
    out, the only device cannot leave, and afterwards its credential is dead."""
    alice = await register_client()
    async with alice:
        seed = alice._store.get_secret("master_key")
        assert seed is not None
        master = MasterKey.from_private_bytes(seed)
        keys = await alice.api.get_keys(alice.account_id)
        _, listed = listed_devices(keys, keys.master_key)
        alone = device_list_payload(alice.account_id, 2, listed)
        with pytest.raises(ServerError) as only:
            await alice.api.leave(b64encode(alone), master.sign(alone))
        assert only.value.code == "forbidden" and "only device" in str(only.value)
        alice2 = await link_second(server, alice, tmp_path / "alice-2")
        async with alice2:
            await alice2.wait_connected(10)
            keys = await alice.api.get_keys(alice.account_id)
            version, listed = listed_devices(keys, keys.master_key)
            assert (version, [d.device_id for d in listed]) == (2, [1, 2])
            with_self = device_list_payload(alice.account_id, 3, listed)
            with pytest.raises(ServerError) as listed_self:
                await alice2.api.leave(b64encode(with_self), master.sign(with_self))
            assert listed_self.value.code == "bad_request"
            without = device_list_payload(alice.account_id, 3, listed[:1])
            with pytest.raises(ServerError) as forged:
                await alice2.api.leave(b64encode(without), MasterKey.generate().sign(without))
            assert forged.value.code == "bad_signature"
            await alice2.api.leave(b64encode(without), master.sign(without))
            with pytest.raises(ClientError) as ended:
                while True:
                    await alice2.next_event(10)
            assert ended.value.code == "revoked"
        assert [d["device_id"] for d in await alice.devices()] == [1]
        keys = await alice.api.get_keys(alice.account_id)
        version, listed = listed_devices(keys, keys.master_key)
        assert (version, [d.device_id for d in listed]) == (3, [1])
        api = HttpApi(server.url, alice2.credentials)
        try:
            with pytest.raises(ServerError) as dead:
                await api.devices()
            assert dead.value.code == "auth_failed"
        finally:
            await api.aclose()


async def test_a_removed_device_is_revoked(
    server: ServerProcess, register_client, tmp_path: Path
) -> None:
    alice = await register_client()
    async with alice:
        alice2 = await link_second(server, alice, tmp_path / "alice-2")
        async with alice2:
            await alice2.wait_connected(10)
            await alice.remove_device(2)
            with pytest.raises(ClientError) as ended:
                while True:
                    await alice2.next_event(10)
            assert ended.value.code == "revoked"
        # A later session of the removed device hears why at once, not after a timeout.
        async with Client(tmp_path / "alice-2") as again:
            started = time.monotonic()
            with pytest.raises(ClientError) as refused_send:
                await again.send_text(alice.account_id, "still here?", timeout=20)
            assert refused_send.value.code in ("revoked", "auth_failed")
            with pytest.raises(ClientError):
                await again.wait_connected(20)
            assert time.monotonic() - started < 10
        api = HttpApi(server.url, alice2.credentials)
        try:
            with pytest.raises(ServerError) as refused:
                await api.me()
            assert refused.value.code == "auth_failed"
        finally:
            await api.aclose()
        keys = await alice.api.get_keys(alice.account_id)
        version, listed = listed_devices(keys, keys.master_key)
        assert (version, [d.device_id for d in listed]) == (3, [1])
        with pytest.raises(UsageError):
            await alice.remove_device(1)
