"""AckQueue: the acks that arrive while a delete runs become the next delete."""

from __future__ import annotations

import asyncio

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.gateway.acks import MAX_QUEUED_ACK_IDS, AckQueue


class Deletes:
    """A store that deletes when told to (release), recording each call's ids."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail = fail
        self.reported: list[ProtocolError] = []

    async def delete(self, ids: list[int]) -> None:
        self.calls.append(ids)
        await self.release.wait()
        if self.fail:
            raise ProtocolError(ErrorCode.INTERNAL, "could not delete")

    async def report(self, exc: ProtocolError) -> None:
        self.reported.append(exc)


async def test_acks_during_a_delete_become_one_next_delete() -> None:
    store = Deletes()
    acks = AckQueue(store.delete, store.report)
    async with asyncio.TaskGroup() as tg:
        await acks.add([1, 2], tg)
        await asyncio.sleep(0)  # the first delete starts
        for ids in ([3], [4, 5], [6]):
            await acks.add(ids, tg)
        store.release.set()
        await acks.settled()
    assert store.calls == [[1, 2], [3, 4, 5, 6]]
    assert acks.left() == []


async def test_a_failed_delete_is_reported_and_the_next_still_runs() -> None:
    store = Deletes(fail=True)
    store.release.set()
    acks = AckQueue(store.delete, store.report)
    async with asyncio.TaskGroup() as tg:
        await acks.add([1], tg)
        await acks.settled()
        await acks.add([2], tg)
        await acks.settled()
    assert store.calls == [[1], [2]]
    assert [e.code for e in store.reported] == [ErrorCode.INTERNAL] * 2


async def test_a_peer_that_outruns_the_deletes_waits() -> None:
    store = Deletes()
    acks = AckQueue(store.delete, store.report)
    async with asyncio.TaskGroup() as tg:
        await acks.add([0], tg)
        await asyncio.sleep(0)  # [0] is being deleted; the rest queue behind it
        await acks.add(list(range(1, MAX_QUEUED_ACK_IDS + 1)), tg)
        blocked = tg.create_task(acks.add([-1], tg))
        await asyncio.sleep(0.01)
        assert not blocked.done()  # the queue is full: the reader waits
        store.release.set()
        await blocked
        await acks.settled()
    assert store.calls[0] == [0]
    assert sum(len(c) for c in store.calls) == MAX_QUEUED_ACK_IDS + 2


async def test_ids_not_yet_being_deleted_are_left_for_the_session_end() -> None:
    store = Deletes()
    acks = AckQueue(store.delete, store.report)
    async with asyncio.TaskGroup() as tg:
        await acks.add([1], tg)
        await asyncio.sleep(0)
        await acks.add([2, 3], tg)
        assert acks.left() == [2, 3]
        store.release.set()
    assert store.calls == [[1]]
