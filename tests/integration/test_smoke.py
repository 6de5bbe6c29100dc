from __future__ import annotations

from porch.client import Message


async def test_two_users_exchange_a_message(register_client) -> None:  # type: ignore[no-untyped-def]
    alice = await register_client(username="alice")
    bob = await register_client(username="bob")
    async with alice, bob:
        await alice.wait_connected(5)
        await bob.wait_connected(5)
        result = await alice.send_text("@bob", "hello bob")
        assert result.ts > 0
        while True:
            event = await bob.next_event(5)
            assert event is not None
            if isinstance(event, Message):
                break
        assert event.text == "hello bob"
        assert event.sender == alice.account_id
