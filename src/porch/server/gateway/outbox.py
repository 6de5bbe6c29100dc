"""A connection's outgoing frames: a bounded queue in front of the socket, and its writer.

A plain list and two flags (server/lightsync.py) rather than an asyncio.Queue, because an
idle connection should cost as little as possible: `_has_frames` wakes the writer, `_room`
says the queue is below its limit (PORCH_SEND_QUEUE_FRAMES). Frames that answer the client
wait for room (`emit`), which stalls the reader and through it the peer; the window's
envelopes are queued regardless (`push`: the window bounds them); online-only frames are
dropped when it is full (`try_push`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from porch.server.lightsync import Flag

# The server's WebSocket layer (edge.py) offers, in the ASGI scope's extensions, a function
# that writes several text frames in one socket write: one call and one write for what is
# waiting, instead of an ASGI `websocket.send` per frame (issue 10).
WRITE_FRAMES_EXTENSION = "porch.write_frames"
# The same without waiting, where the layer has it: it writes the frames at once and says so,
# or says it cannot now (the socket is behind, or gone) and writes nothing (`Outbox.flush`).
WRITE_FRAMES_NOW_EXTENSION = "porch.write_frames_now"
FRAMES_PER_WRITE = 64
BYTES_PER_WRITE = 1 << 20

WriteFrames = Callable[[list[bytes]], Awaitable[None]]
WriteFramesNow = Callable[[list[bytes]], bool]


def frames_writer(scope: Mapping[str, Any]) -> WriteFrames | None:
    """The scope's several-frames writer, if the server that runs the app has one."""
    extensions: Mapping[str, Any] = scope.get("extensions") or {}
    write = extensions.get(WRITE_FRAMES_EXTENSION)
    return write if callable(write) else None


def frames_writer_now(scope: Mapping[str, Any]) -> WriteFramesNow | None:
    """The scope's writer that does not wait, if the server that runs the app has one."""
    extensions: Mapping[str, Any] = scope.get("extensions") or {}
    write = extensions.get(WRITE_FRAMES_NOW_EXTENSION)
    return write if callable(write) else None


class Outbox:
    __slots__ = (
        "_has_frames",
        "_idle",
        "_limit",
        "_out",
        "_room",
        "_send",
        "_sent",
        "_write_frames",
        "_write_now",
    )

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        limit: int,
        sent: Callable[[str], None],
        write_frames: WriteFrames | None = None,
        write_now: WriteFramesNow | None = None,
    ) -> None:
        self._send = send  # writes one frame to the socket
        self._write_frames = write_frames  # writes several in one go, where the server can
        self._write_now = write_now  # the same without waiting (flush), where it can
        # The writer task is parked with nothing in hand: frames written now keep their order.
        self._idle = False
        self._limit = limit
        self._sent = sent  # counts a frame written, by its type
        # A list, not a deque: an empty deque keeps a 64-slot block, about 760 bytes, on every
        # idle connection; popping the front of a list of at most window + limit frames
        # moves a few KB at worst.
        self._out: list[tuple[str, bytes]] = []
        self._has_frames = Flag()
        self._room = Flag(True)

    async def emit(self, kind: str, data: bytes) -> None:
        """Queue a frame, waiting while the socket is too far behind (back-pressure on the
        reader, and through it on the peer's sending)."""
        await self.room()
        self.push(kind, data)

    @property
    def full(self) -> bool:
        return len(self._out) >= self._limit

    async def room(self) -> None:
        """Wait while the queue is at its limit (what emit waits for)."""
        while len(self._out) >= self._limit:
            self._room.clear()
            await self._room.wait()

    def push(self, kind: str, data: bytes) -> None:
        self._out.append((kind, data))
        self._has_frames.set()

    def try_push(self, kind: str, data: bytes) -> bool:
        if len(self._out) >= self._limit:
            return False
        self.push(kind, data)
        return True

    def queue(self, kind: str, data: bytes) -> None:
        """push without waking the writer: the caller calls `flush` once it has queued."""
        self._out.append((kind, data))

    def send_one(self, kind: str, data: bytes) -> None:
        """queue(kind, data) then flush(), for one frame and without their list work: a group
        message hands each of its devices one envelope frame (handover.py), and this is the
        whole of that hand-over besides the write (issue 10, fan-out)."""
        write_now = self._write_now
        if not self._out and self._idle and write_now is not None and write_now([data]):
            self._sent(kind)
            return
        self._out.append((kind, data))
        self.flush()

    def flush(self) -> None:
        """What is queued goes to the socket: at once, from the caller, while the writer task
        is parked and the socket takes it; otherwise the writer is woken for it. A group
        message hands an envelope to each of 1,000 connections in one callback (handover.py):
        a write from there costs each a system call, where waking its writer cost a future,
        a task step and four coroutines' resumption (issue 10, fan-out)."""
        out = self._out
        if not out:
            return
        write_now = self._write_now
        if self._idle and write_now is not None:
            while out:
                n = _write_size(out)
                if not write_now([data for _, data in out[:n]]):
                    break  # behind or gone: the writer waits for room, or sees the end
                sent = self._sent
                for kind, _ in out[:n]:
                    sent(kind)
                del out[:n]
            if len(out) < self._limit:
                self._room.set()
            if not out:
                return
        self._has_frames.set()

    async def run(self) -> None:
        """The writer task: frames to the socket, in order, for as long as the connection."""
        limit = self._limit
        out = self._out
        while True:
            while out:
                if self._write_frames is None:
                    kind, data = out.pop(0)
                    await self._send(data.decode())
                    self._sent(kind)
                else:
                    await self._write_some()
                if len(out) < limit:
                    self._room.set()
            data = b""  # an idle connection keeps no frame alive
            self._has_frames.clear()
            if not out:
                self._idle = True
                try:
                    await self._has_frames.wait()
                finally:
                    self._idle = False

    async def _write_some(self) -> None:
        """What is waiting, oldest first, up to FRAMES_PER_WRITE and about BYTES_PER_WRITE,
        in one write."""
        assert self._write_frames is not None
        out = self._out
        n = _write_size(out)
        taken = out[:n]
        del out[:n]
        await self._write_frames([data for _, data in taken])
        for kind, _ in taken:
            self._sent(kind)


def _write_size(out: list[tuple[str, bytes]]) -> int:
    """How many of the oldest frames go in one write: at most FRAMES_PER_WRITE, and past
    BYTES_PER_WRITE only the frame that crosses it (at least one)."""
    size = 0
    for n, (_, data) in enumerate(out[:FRAMES_PER_WRITE]):
        if size >= BYTES_PER_WRITE:
            return n
        size += len(data)
    return min(len(out), FRAMES_PER_WRITE)
