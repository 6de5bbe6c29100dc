"""One profile, several processes; failed sends; names, not ids (docs/design.md).

The CLI runs as real subprocesses (`python -m porch.cli.main`), as a user runs it next to an
open `porch chat`: the Client held open in the test plays the chat.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

from porch.client import Client, ConnectionChanged, Event
from tests.integration.server import ServerProcess, default_sigint
from tests.integration.test_features import first_message


async def porch(profile: Path, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "porch.cli.main",
        *args,
        "--profile",
        str(profile),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def events_for(client: Client, seconds: float) -> list[Event]:
    """Every event within the next seconds (a ClientError, like 'replaced', raises)."""
    got: list[Event] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        event = await client.next_event(left)
        if event is not None:
            got.append(event)
    return got


async def test_commands_relay_through_a_running_owner_instead_of_kicking_it(
    register_client,  # type: ignore[no-untyped-def]
) -> None:
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    async with alice, bob:  # alice's Client is the open `porch chat`
        await alice.wait_connected(10)
        await bob.wait_connected(10)
        code, _, err = await porch(alice.profile_dir, "send", "--to", "@bob", "from a side process")
        assert code == 0, err
        assert "sent" in err
        assert (await first_message(bob)).text == "from a side process"
        # Not kicked: no 4409 'replaced' (next_event would raise it), never disconnected.
        seen = await events_for(alice, 1.0)
        assert ConnectionChanged(False) not in seen
        assert alice.connected
        # The chat still works, and `porch recv` next to it prints what the chat has not shown.
        await bob.send_text("@alice", "to the chat")
        assert (await first_message(alice)).text == "to the chat"
        code, out, err = await porch(alice.profile_dir, "recv", "--wait", "1")
        assert code == 0, err
        assert "@bob: to the chat" in out
        await alice.send_text("@bob", "still the owner", timeout=10)
        assert (await first_message(bob)).text == "still the owner"


async def test_a_waiting_relay_takes_over_when_the_owner_exits(
    register_client,  # type: ignore[no-untyped-def]
) -> None:
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    side = Client(alice.profile_dir)
    async with bob:
        await alice.__aenter__()
        try:
            await alice.wait_connected(10)
            async with side:
                assert not side.owner
                await alice.aclose()  # the owner exits; the relay becomes the owner
                result = await side.send_text("@bob", "after the handover", timeout=15)
                assert result.ts > 0 and side.owner
                assert (await first_message(bob)).text == "after the handover"
        finally:
            await alice.aclose()


async def test_messages_a_send_received_are_printed_by_the_next_recv(
    register_client,  # type: ignore[no-untyped-def]
) -> None:
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    async with alice:
        await alice.send_text("@bob", "waiting for bob")  # bob is offline
    code, _, err = await porch(bob.profile_dir, "send", "--to", "@alice", "a reply")
    assert code == 0, err
    code, out, err = await porch(bob.profile_dir, "recv", "--wait", "1", "--json")
    assert code == 0, err
    [record] = [json.loads(line) for line in out.splitlines()]
    assert record["text"] == "waiting for bob" and record["from_label"] == "@alice"
    assert record["server_ts"] > 0
    code, out, _ = await porch(bob.profile_dir, "recv", "--wait", "1")
    assert out == ""  # shown once


async def test_queued_cancelled_and_failed_sends(
    server: ServerProcess,
    register_client,  # type: ignore[no-untyped-def]
) -> None:
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    async with alice:
        await alice.send_text("@bob", "first")  # @bob is known to the profile now
    server.stop()
    code, _, err = await porch(alice.profile_dir, "send", "--to", "@bob", "--timeout", "1", "no")
    assert code == 75, err
    assert "queued: will be retried" in err
    code, out, _ = await porch(alice.profile_dir, "outbox", "--json")
    [item] = [json.loads(line) for line in out.splitlines()]
    assert item["state"] == "queued" and item["to_label"] == "@bob" and item["kind"] == "text"
    code, out, _ = await porch(alice.profile_dir, "outbox", "cancel", item["id"])
    assert code == 0 and f"cancelled {item['id']}" in out
    code, out, _ = await porch(alice.profile_dir, "outbox")
    assert out == ""
    server.start()
    async with alice, bob:
        assert (await first_message(bob)).text == "first"
        await alice.send_text("@bob", "after the cancel", timeout=15)
        assert (await first_message(bob)).text == "after the cancel"  # never "no"
        assert [m.status for m in alice.history(bob.account_id)][-2] == "cancelled"

    # Refused for good: exit 1, "failed", kept as failed and never sent again.
    nobody = str(uuid.uuid4())
    code, _, err = await porch(alice.profile_dir, "send", "--to", nobody, "--timeout", "10", "x")
    assert code == 1, err
    assert "failed:" in err
    code, out, _ = await porch(alice.profile_dir, "outbox", "--json")
    [item] = [json.loads(line) for line in out.splitlines()]
    assert item["state"] == "failed" and item["error_code"] == "not_found"
    async with alice:
        await alice.wait_connected(10)
        assert await alice.flush(2.0)  # the failed item does not count as waiting
        assert [e.state for e in alice.outbox()] == ["failed"]
    code, out, _ = await porch(alice.profile_dir, "outbox", "cancel", "--all")
    assert code == 0 and item["id"] in out


async def test_senders_and_blocks_show_names_not_ids(
    register_client,  # type: ignore[no-untyped-def]
) -> None:
    alice = await register_client(username="alice")
    carol = await register_client()  # no username: her (discoverable) number is her name
    bob = await register_client(username="bob")
    async with alice, carol:
        await alice.send_text("@bob", "hi from alice")
        await carol.send_text("@bob", "hi from carol")
    code, out, err = await porch(bob.profile_dir, "recv", "--wait", "1")
    assert code == 0, err
    assert "@alice: hi from alice" in out
    assert f"{carol.config.phone}: hi from carol" in out
    code, out, err = await porch(bob.profile_dir, "block", "@alice")
    assert (code, out.strip()) == (0, "Blocked @alice."), err
    code, out, err = await porch(bob.profile_dir, "block", carol.account_id)
    assert (code, out.strip()) == (0, f"Blocked {carol.config.phone}."), err


async def test_public_profile_hides_undiscoverable_numbers(
    server: ServerProcess,
    register_client,  # type: ignore[no-untyped-def]
) -> None:
    from porch.client.api import HttpApi
    from porch.client.errors import ServerError

    alice = await register_client(username="alice")
    bob = await register_client()
    api = HttpApi(server.url, bob.credentials)
    alice_api = HttpApi(server.url, alice.credentials)
    try:
        assert await api.profile(alice.account_id) == ("alice", alice.config.phone)
        await alice_api.set_discoverable(False)
        assert await api.profile(alice.account_id) == ("alice", None)
        assert await alice_api.profile(bob.account_id) == (None, bob.config.phone)
        for bad, code in ((str(uuid.uuid4()), "not_found"), ("not-an-id", "bad_request")):
            try:
                await api.profile(bad)
            except ServerError as exc:
                assert exc.code == code, (bad, exc.code)
            else:
                raise AssertionError(f"{bad} has a profile")
    finally:
        await api.aclose()
        await alice_api.aclose()


async def test_ctrl_c_after_queueing_says_queued(
    server: ServerProcess,
    register_client,  # type: ignore[no-untyped-def]
) -> None:
    import signal

    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    async with alice:
        await alice.resolve("@bob")
    server.stop()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "porch.cli.main",
        "send",
        "--to",
        "@bob",
        "--timeout",
        "60",
        "interrupted",
        "--profile",
        str(alice.profile_dir),
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=default_sigint,  # Ctrl-C as in a terminal, even in a background suite
    )
    deadline = time.monotonic() + 30
    while True:  # wait until the message is stored, then press Ctrl-C
        _, out, _ = await porch(alice.profile_dir, "outbox", "--json")
        if out:
            break
        assert time.monotonic() < deadline, "the message was never queued"
        await asyncio.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 75, err
    assert b"queued: will be retried" in err
    [item] = [json.loads(line) for line in out.splitlines()]
    assert item["state"] == "queued"
    server.start()
    async with alice, bob:  # queued means it goes on the next connection
        assert (await first_message(bob)).text == "interrupted"
