"""ProfileLock: one connection owner per profile, freed when its holder exits or dies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from porch.client.ownership import ProfileLock


def test_one_holder_at_a_time_and_release_hands_over(tmp_path: Path) -> None:
    first, second = ProfileLock(tmp_path), ProfileLock(tmp_path)
    assert first.try_acquire() and first.held
    assert first.try_acquire()  # holding it already
    assert not second.try_acquire() and not second.held
    first.release()
    first.release()  # twice is harmless
    assert second.try_acquire()
    second.release()


def test_a_killed_holder_frees_the_profile(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from porch.client.ownership import"
        " ProfileLock; assert ProfileLock(Path(sys.argv[1])).try_acquire();"
        " print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        lock = ProfileLock(tmp_path)
        assert not lock.try_acquire()
        proc.kill()
        proc.wait(10)
        assert lock.try_acquire()  # the kernel released the dead process's lock
        lock.release()
    finally:
        proc.kill()
        proc.wait(10)


async def test_a_relay_sends_and_receives_through_the_owner(tmp_path: Path) -> None:
    import uuid

    import pytest

    from porch.client import Client, Message, SendFailed
    from porch.client.inprocess import InProcessTransport
    from porch.server.app import create_app
    from tests.unit.client.test_inprocess import ALICE, BOB, _next_message, _register, _settings

    app = create_app(_settings(tmp_path))
    async with InProcessTransport(app) as t:
        alice = await _register(t, tmp_path, ALICE, "alice")
        bob = await _register(t, tmp_path, BOB, "bob")
        relay = Client(alice.profile_dir, transport=t)
        async with alice, bob, relay:
            await alice.wait_connected(10)
            assert alice.owner and not relay.owner and relay.connected
            sent = await relay.send_text(BOB, "through the owner", timeout=10)
            got = await _next_message(bob)
            assert (got.text, got.id) == ("through the owner", sent.id)
            assert got.sender == alice.account_id
            # What the owner receives and stores reaches the relay as an event.
            await bob.send_text(alice.account_id, "to the profile", timeout=10)
            seen = await _next_message(relay)
            assert isinstance(seen, Message) and seen.text == "to the profile"
            # The owner's refusal comes back to the relay as the same error.
            with pytest.raises(SendFailed) as refused:
                await relay.send_text(str(uuid.uuid4()), "to nobody", timeout=10)
            assert refused.value.code == "not_found"
            assert [e.state for e in relay.outbox()] == ["failed"]
