"""AckQueue: the acks that arrive while a delete runs become the next delete."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.gateway.acks import MAX_QUEUED_ACK_IDS, AckQueue


class Deletes:
    """A store whose deletes finish when told to (finish), recording each call's ids."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.pending: list[Callable[[int | BaseException], None]] = []
        self.fail = fail
        self.reported: list[BaseException] = []
        self.auto = False  # finish each delete as it starts (on the next tick)

    def delete(self, ids: list[int], done: Callable[[int | BaseException], None]) -> None:
        self.calls.append(ids)
        self.pending.append(done)
        if self.auto:
            asyncio.get_running_loop().call_soon(self.finish)

    def finish(self) -> None:
        pending, self.pending = self.pending, []
        for done in pending:
            if self.fail:
                done(ProtocolError(ErrorCode.INTERNAL, "could not delete"))
            else:
                done(1)

    def report(self, exc: BaseException) -> None:
        self.reported.append(exc)


async def test_acks_during_a_delete_become_one_next_delete() -> None:
    store = Deletes()
    acks = AckQueue(store.delete, store.report)
    await acks.add([1, 2])  # the first delete starts at once
    for ids in ([3], [4, 5], [6]):
        await acks.add(ids)
    assert store.calls == [[1, 2]]
    store.auto = True
    store.finish()
    await acks.settled()
    assert store.calls == [[1, 2], [3, 4, 5, 6]]
    assert acks.left() == [] and store.reported == []


async def test_a_failed_delete_is_reported_and_the_next_still_runs() -> None:
    store = Deletes(fail=True)
    store.auto = True
    acks = AckQueue(store.delete, store.report)
    await acks.add([1])
    await acks.settled()
    await acks.add([2])
    await acks.settled()
    assert store.calls == [[1], [2]]
    assert [getattr(e, "code", None) for e in store.reported] == [ErrorCode.INTERNAL] * 2


async def test_a_peer_that_outruns_the_deletes_waits() -> None:
    store = Deletes()
    acks = AckQueue(store.delete, store.report)
    await acks.add([0])  # [0] is being deleted; the rest queue behind it
    await acks.add(list(range(1, MAX_QUEUED_ACK_IDS + 1)))
    blocked = asyncio.create_task(acks.add([-1]))
    await asyncio.sleep(0.01)
    assert not blocked.done()  # the queue is full: the reader waits
    store.auto = True
    store.finish()
    await blocked
    await acks.settled()
    assert store.calls[0] == [0]
    assert sum(len(c) for c in store.calls) == MAX_QUEUED_ACK_IDS + 2


async def test_ids_not_yet_being_deleted_are_left_for_the_session_end() -> None:
    store = Deletes()
    acks = AckQueue(store.delete, store.report)
    await acks.add([1])
    await acks.add([2, 3])
    assert acks.left() == [2, 3]
    store.finish()
    await acks.settled()
    assert store.calls == [[1]]


async def test_settled_waits_for_every_delete_and_a_cancelled_waiter_cancels_none() -> None:
    store = Deletes()
    acks = AckQueue(store.delete, store.report)
    await acks.add([1])
    impatient = asyncio.create_task(acks.settled())
    patient = asyncio.create_task(acks.settled())
    await asyncio.sleep(0)
    impatient.cancel()
    await acks.add([2])  # queued behind [1]
    store.auto = True
    store.finish()
    await asyncio.wait_for(patient, 1)
    assert store.calls == [[1], [2]] and not store.pending
    await acks.settled()  # nothing running: at once


async def test_add_now_starts_a_delete_and_refuses_past_the_bound() -> None:
    store = Deletes()
    acks = AckQueue(store.delete, store.report)
    assert acks.add_now([1])  # the first delete starts at once, without a coroutine
    assert store.calls == [[1]]
    assert acks.add_now(list(range(2, MAX_QUEUED_ACK_IDS + 2)))  # queued behind it
    assert not acks.add_now([-1])  # full: the caller must wait (add)
    store.auto = True
    store.finish()
    await acks.settled()
    assert store.calls == [[1], list(range(2, MAX_QUEUED_ACK_IDS + 2))]
    assert store.reported == []


async def test_a_delete_refused_before_it_starts_is_reported_and_settles() -> None:
    reported: list[BaseException] = []

    def closed(ids: list[int], done: Callable[[int | BaseException], None]) -> None:
        raise ProtocolError(ErrorCode.INTERNAL, "the store is closed")

    acks = AckQueue(closed, reported.append)
    assert acks.add_now([1])
    await asyncio.wait_for(acks.settled(), 1)  # nothing left running
    assert [getattr(e, "code", None) for e in reported] == [ErrorCode.INTERNAL]
