"""Outbox: frames in order, several to a socket write, bounded with back-pressure."""

from __future__ import annotations

import asyncio
import contextlib

from porch.server.gateway.outbox import FRAMES_PER_WRITE, Outbox, frames_writer


class Socket:
    def __init__(self) -> None:
        self.writes: list[list[bytes]] = []
        self.sent: list[str] = []
        self.open = asyncio.Event()
        self.open.set()

    async def send(self, text: str) -> None:
        await self.open.wait()
        self.writes.append([text.encode()])

    async def write_frames(self, frames: list[bytes]) -> None:
        await self.open.wait()
        self.writes.append(list(frames))


async def _drain(box: Outbox) -> None:
    task = asyncio.create_task(box.run())
    await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_waiting_frames_go_out_in_order_several_to_a_write() -> None:
    sock = Socket()
    box = Outbox(sock.send, 1000, sock.sent.append, sock.write_frames)
    for i in range(FRAMES_PER_WRITE + 3):
        box.push("envelope", b"%d" % i)
    await _drain(box)
    assert [len(w) for w in sock.writes] == [FRAMES_PER_WRITE, 3]
    assert [f for w in sock.writes for f in w] == [b"%d" % i for i in range(FRAMES_PER_WRITE + 3)]
    assert sock.sent == ["envelope"] * (FRAMES_PER_WRITE + 3)


async def test_without_the_extension_each_frame_is_its_own_send() -> None:
    sock = Socket()
    box = Outbox(sock.send, 10, sock.sent.append)
    box.push("sent", b"a")
    box.push("pong", b"b")
    await _drain(box)
    assert sock.writes == [[b"a"], [b"b"]]
    assert sock.sent == ["sent", "pong"]


async def test_a_full_outbox_makes_answers_wait_and_drops_online_only_frames() -> None:
    sock = Socket()
    sock.open.clear()  # the peer does not read
    box = Outbox(sock.send, 2, sock.sent.append, sock.write_frames)
    box.push("envelope", b"1")
    box.push("envelope", b"2")
    assert not box.try_push("typing", b"t")
    waiting = asyncio.create_task(box.emit("sent", b"s"))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    writer = asyncio.create_task(box.run())
    sock.open.set()
    await asyncio.wait_for(waiting, 1)
    await asyncio.sleep(0.01)
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writer
    assert [f for w in sock.writes for f in w] == [b"1", b"2", b"s"]


def test_the_writer_comes_from_the_scope_only_if_callable() -> None:
    async def write(frames: list[bytes]) -> None: ...

    assert frames_writer({"extensions": {"porch.write_frames": write}}) is write
    assert frames_writer({"extensions": {"porch.write_frames": "no"}}) is None
    assert frames_writer({}) is None


class NowSocket(Socket):
    """A socket with the layer's writer that does not wait: it takes frames while `ready`."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = True

    def write_now(self, frames: list[bytes]) -> bool:
        if not self.ready:
            return False
        self.writes.append(list(frames))
        return True


async def test_flush_writes_at_once_while_the_writer_is_parked() -> None:
    sock = NowSocket()
    box = Outbox(sock.send, 100, sock.sent.append, sock.write_frames, sock.write_now)
    task = asyncio.create_task(box.run())
    await asyncio.sleep(0)  # parked, nothing in hand
    box.queue("envelope", b"1")
    box.queue("envelope", b"2")
    assert sock.writes == []  # queue alone writes nothing
    box.flush()
    assert sock.writes == [[b"1", b"2"]]  # from the caller, before the writer runs
    assert sock.sent == ["envelope", "envelope"]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_flush_wakes_the_writer_when_the_socket_cannot_take_frames_now() -> None:
    sock = NowSocket()
    sock.ready = False  # above its high-water mark
    box = Outbox(sock.send, 100, sock.sent.append, sock.write_frames, sock.write_now)
    task = asyncio.create_task(box.run())
    await asyncio.sleep(0)
    box.queue("envelope", b"1")
    box.flush()
    assert sock.writes == []
    await asyncio.sleep(0.01)
    assert sock.writes == [[b"1"]]  # by the writer task, which waits for room
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_flush_keeps_order_behind_frames_the_writer_holds() -> None:
    sock = NowSocket()
    sock.open.clear()  # the writer's own write waits
    box = Outbox(sock.send, 100, sock.sent.append, sock.write_frames, sock.write_now)
    task = asyncio.create_task(box.run())
    box.push("sent", b"a")
    await asyncio.sleep(0)  # the writer took "a" and waits on the socket
    box.queue("envelope", b"b")
    box.flush()
    assert sock.writes == []  # not written past "a"
    sock.open.set()
    await asyncio.sleep(0.01)
    assert [f for w in sock.writes for f in w] == [b"a", b"b"]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_flush_cuts_writes_by_count() -> None:
    sock = NowSocket()
    box = Outbox(sock.send, 1000, sock.sent.append, sock.write_frames, sock.write_now)
    task = asyncio.create_task(box.run())
    await asyncio.sleep(0)
    for i in range(FRAMES_PER_WRITE + 1):
        box.queue("envelope", b"%d" % i)
    box.flush()
    assert [len(w) for w in sock.writes] == [FRAMES_PER_WRITE, 1]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_send_one_is_queue_then_flush_for_one_frame() -> None:
    sock = NowSocket()
    sock.open.clear()  # the writer's own write waits
    box = Outbox(sock.send, 100, sock.sent.append, sock.write_frames, sock.write_now)
    task = asyncio.create_task(box.run())
    await asyncio.sleep(0)  # parked, nothing in hand
    box.send_one("envelope", b"1")
    assert sock.writes == [[b"1"]]  # at once, from the caller
    assert sock.sent == ["envelope"]
    sock.ready = False  # above its high-water mark: the writer takes it
    box.send_one("envelope", b"2")
    assert sock.writes == [[b"1"]]
    await asyncio.sleep(0)  # the writer holds "2", waiting on the socket
    sock.ready = True
    box.send_one("envelope", b"3")  # never written past "2"
    assert sock.writes == [[b"1"]]
    sock.open.set()
    await asyncio.sleep(0.01)
    assert [f for w in sock.writes for f in w] == [b"1", b"2", b"3"]
    assert sock.sent == ["envelope"] * 3
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
