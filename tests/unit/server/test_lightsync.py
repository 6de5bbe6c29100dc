"""Flag, Inbox and Slots: asyncio.Event's, Queue's and Semaphore's behaviour, lighter."""

from __future__ import annotations

import asyncio
import sys

import pytest

from porch.server.lightsync import Flag, Inbox, Slots


async def test_flag_wakes_every_waiter_and_stays_set_until_cleared() -> None:
    flag = Flag()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert flag.is_set()
    assert await asyncio.wait_for(flag.wait(), 0.1)  # set: returns at once
    flag.clear()
    assert not flag.is_set()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flag.wait(), 0.01)


async def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    flag = Flag()
    stays = asyncio.create_task(flag.wait())
    leaves = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    leaves.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaves
    flag.set()
    assert await asyncio.wait_for(stays, 0.1)


async def test_a_flag_holds_no_waiter_list_unless_someone_waits() -> None:
    flag = Flag(True)
    assert flag._waiters is None
    flag.clear()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flag.wait(), 0.01)  # the timed-out waiter takes itself out
    assert flag._waiters is None
    waiter = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert flag._waiters is not None and len(flag._waiters) == 1
    flag.set()
    await waiter
    assert flag._waiters is None


def test_a_flag_is_far_smaller_than_an_event() -> None:
    # The point of Flag (docs/performance.md, "Idle connections"): an Event's deque alone is
    # over 600 bytes.
    event = asyncio.Event()
    event_size = sys.getsizeof(event) + sys.getsizeof(event._waiters)
    assert sys.getsizeof(Flag()) * 5 < event_size


async def test_inbox_hands_items_over_in_order_and_waits_when_empty() -> None:
    inbox = Inbox()
    assert inbox.empty()
    getter = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not getter.done()
    inbox.put_nowait({"type": "websocket.connect"})
    inbox.put_nowait({"type": "websocket.receive", "text": "1"})
    assert await asyncio.wait_for(getter, 0.1) == {"type": "websocket.connect"}
    assert not inbox.empty()
    assert await inbox.get() == {"type": "websocket.receive", "text": "1"}
    assert inbox.empty()


async def test_inbox_get_cancelled_by_a_timeout_loses_nothing() -> None:
    inbox = Inbox()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await inbox.get()
    inbox.put_nowait("late")
    assert await asyncio.wait_for(inbox.get(), 0.1) == "late"


async def test_slots_are_taken_without_waiting_until_none_are_left() -> None:
    slots = Slots(2)
    assert slots.try_take() and slots.try_take()
    assert not slots.try_take()
    waiter = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    assert not waiter.done()  # none free: it waits for a release
    slots.release()
    await asyncio.wait_for(waiter, 1)
    assert not slots.try_take()  # the released slot went to the waiter
    slots.release()
    assert slots.try_take()


async def test_a_take_cancelled_by_a_timeout_takes_nothing() -> None:
    slots = Slots(1)
    assert slots.try_take()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slots.take(), 0.01)
    slots.release()
    assert slots.try_take()
    assert not slots.try_take()
