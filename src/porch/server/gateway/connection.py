"""One authenticated WebSocket session: frames in, frames out, acks, back-pressure.

Delivery is a window (gateway/window.py): at most `delivery_window` envelopes are in flight
(sent, not yet acknowledged) per connection. Everything else waits in the store, which is
where it already is, so a slow reader costs the server a bounded amount of memory. New
envelopes are held in memory from the bus while the device is caught up and handed over by
the pump once per event-loop tick; otherwise the pump reads the queue after its cursor, oldest
first. Acks go to the store a batch at a time (gateway/acks.py), frames to the socket several
to a write (gateway/outbox.py). Online-only frames (typing) are dropped, not queued, when the
socket is behind. The bus callbacks and store reads that fill the window are the methods of
gateway/session_delivery.py (a mixin of this class).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from porch.failures import log_failure
from porch.protocol import frames as f
from porch.protocol import hot_frames as hf
from porch.protocol.close_codes import CloseCode
from porch.protocol.codec import dumps
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.bus.base import Bus
from porch.server.clock import Clock
from porch.server.gateway.acks import AckQueue
from porch.server.gateway.acks_now import frame_handler_slot, read_ack
from porch.server.gateway.admission import Ticket, mark_authenticated
from porch.server.gateway.handover import HandOver
from porch.server.gateway.outbox import Outbox, frames_writer, frames_writer_now
from porch.server.gateway.session_delivery import DeliveryMixin
from porch.server.gateway.socket import GatewaySocket
from porch.server.gateway.window import DeliveryWindow
from porch.server.lightsync import Flag, Slots
from porch.server.metrics import Metrics
from porch.server.ratelimit import Limit, count_hit
from porch.server.services.accounts import AccountService, Principal
from porch.server.services.keys import KeyService
from porch.server.services.messages import MessageService

log = logging.getLogger("porch.gateway")

MAX_AUTH_TRIES = 3
# Auth frames in the order they arrived on this node (Bus.subscribe's `order`).
_AUTH_ORDER = itertools.count(1)
MAX_PENDING_SENDS = 256


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    max_frame_bytes: int
    delivery_window: int
    send_queue_frames: int
    auth_timeout: float
    send_limit: Limit


class _Closed(Exception):
    """Raised inside the task group to end the session (the peer left, or it was replaced)."""


class Connection(DeliveryMixin):
    def __init__(
        self,
        ws: GatewaySocket,
        accounts: AccountService,
        keys: KeyService,
        messages: MessageService,
        bus: Bus,
        clock: Clock,
        metrics: Metrics,
        config: GatewayConfig,
        preauth: Ticket | None = None,
        handover: HandOver | None = None,
    ) -> None:
        self._ws = ws
        self._preauth = preauth  # this socket's place among the unauthenticated ones
        self._accounts = accounts
        self._keys = keys
        self._messages = messages
        self._bus = bus
        self._clock = clock
        self._metrics = metrics
        self._config = config
        self._write_frames = frames_writer(ws.scope)
        self._outbox = Outbox(
            self._send_text,
            config.send_queue_frames,
            metrics.frame_out,
            None if self._write_frames is None else self._send_frames,
            frames_writer_now(ws.scope),
        )
        self._wake = Flag()  # the pump has something to do
        self._flush_due = False  # a hand-over of held envelopes is scheduled for this tick
        # One tick's hand-overs from every connection (handover.py); a connection of its own
        # where none is shared (tests that build one alone).
        self._handover = HandOver(metrics.delivery_latency) if handover is None else handover
        self._window = DeliveryWindow(config.delivery_window)
        self._acks = AckQueue(self._delete, self._delete_failed)
        self._drained_sent = False
        self._sends = Slots(MAX_PENDING_SENDS)
        self._send_window = (0.0, 0)  # (start, sends in it): the per-connection send limit
        self._close_code: int | None = None
        self._principal: Principal | None = None
        self._auth_order = 0
        self._batch = False
        self._tg: asyncio.TaskGroup | None = None

    async def run(self) -> None:
        await self._ws.accept()
        # The request's headers were read before the handshake (the client address,
        # server/proxies.py) and are not read again; a session may last for hours.
        headers = self._ws.scope.get("headers")
        if isinstance(headers, list):
            headers.clear()
        try:
            principal = await self._authenticate()
        except (WebSocketDisconnect, _Closed):
            return
        finally:
            if self._preauth is not None:
                self._preauth.release()
        if principal is None:
            with contextlib.suppress(Exception):
                await self._ws.close(CloseCode.AUTH, "authentication failed")
            return
        self._principal = principal
        # Before `ready`, so the client's first frame after it may use the full frame size.
        mark_authenticated(self._ws)
        sub = self._bus.subscribe(
            principal.account_id,
            principal.device_id,
            self._on_event,
            self._on_replaced,
            order=self._auth_order,
        )
        self._metrics.connections.inc()
        on_frame = frame_handler_slot(self._ws.scope)
        if on_frame is not None:
            on_frame(self._ack_now)  # acks taken without waking the reader (acks_now.py)
        try:
            await self._accounts.seen(principal)
            count = await self._keys.count(principal)
            await self._emit(
                f.ready(principal.account_id, principal.device_id, self._clock.now_ms(), count)
            )
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                # Writer and pump are separate tasks so that reading the next envelopes from
                # the store overlaps with writing the last ones to the socket.
                tg.create_task(self._outbox.run())
                # The pump also ends the session when it is revoked or replaced (_end), even
                # before this point.
                tg.create_task(self._pump())
                # The reader runs in this task, the session's own: a task fewer per connection.
                await self._reader()
        except* (_Closed, WebSocketDisconnect):
            log.debug("session ended")  # the peer left, or the session was replaced or revoked
        finally:
            if on_frame is not None:
                on_frame(None)
            sub.close()
            self._metrics.connections.dec()
            left = self._acks.left()  # acknowledged as the session ended: deleted still
            if left:
                with contextlib.suppress(Exception):
                    await self._messages.acknowledge(principal, left)
            if self._close_code is not None:
                with contextlib.suppress(Exception):
                    await self._ws.close(self._close_code)

    # Frames in ------------------------------------------------------------------------------

    async def _receive(self) -> str | bytes:
        message = await self._ws.receive()
        if message["type"] == "websocket.disconnect":
            raise _Closed
        data: str | bytes | None = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        return data

    def _parse(self, data: str | bytes) -> hf.GatewayFrame:
        limit = self._config.max_frame_bytes
        size = len(data)
        if isinstance(data, str) and size * 4 > limit:  # UTF-8 needs at most 4 bytes a char
            size = len(data.encode("utf-8"))
        if size > limit:
            raise ProtocolError(
                ErrorCode.FRAME_TOO_LARGE,
                f"frame of {size} bytes exceeds the limit of {self._config.max_frame_bytes}",
                limit=self._config.max_frame_bytes,
            )
        frame = hf.read_client_frame(data)
        self._metrics.frame_in(frame.type)
        return frame

    async def _authenticate(self) -> Principal | None:
        for _ in range(MAX_AUTH_TRIES):
            try:
                async with asyncio.timeout(self._config.auth_timeout):
                    data = await self._receive()
            except TimeoutError:
                await self._send_error(
                    ProtocolError(ErrorCode.AUTH_REQUIRED, "authenticate within the time limit")
                )
                return None
            try:
                frame = self._parse(data)
                if not isinstance(frame, f.AuthFrame):
                    raise ProtocolError(
                        ErrorCode.AUTH_REQUIRED, "the first frame must be an auth frame"
                    )
                client = self._ws.client
                self._batch = frame.batch
                # Taken before the store's reads, which may finish out of order: the order of
                # takeover between this device's connections (Bus.subscribe).
                self._auth_order = next(_AUTH_ORDER)
                return await self._accounts.authenticate(
                    frame.account, frame.device, frame.password, client.host if client else ""
                )
            except ProtocolError as exc:
                await self._send_error(exc)
                if exc.code == ErrorCode.AUTH_FAILED:
                    return None
        return None

    async def _reader(self) -> None:
        while True:
            # One call per frame, so that nothing of a frame stays referenced while idle.
            await self._handle(await self._receive())

    async def _handle(self, data: str | bytes) -> None:
        assert self._principal is not None and self._tg is not None
        try:
            frame = self._parse(data)
            if isinstance(frame, hf.Send):
                self._count_send(frame.id)
                checked = await self._messages.check(self._principal, frame)
                # Every send is answered from a callback, past the outbox's limit (push): the
                # reader waits for room first, so the queue holds at most the limit and the
                # pending sends' answers.
                if self._outbox.full:
                    await self._outbox.room()
                if not self._sends.try_take():
                    await self._sends.take()
                # Joins this tick's batch, in frame order; the store commits in that order.
                self._messages.submit(checked, functools.partial(self._committed, frame.id))
            elif isinstance(frame, hf.Ack):
                self._acked(frame.ids)
                if not self._acks.add_now(frame.ids):  # past the queue's bound: wait
                    await self._acks.add(frame.ids)
            elif isinstance(frame, hf.Reject):
                # Done with, like an ack: a client that cannot take an envelope must not get
                # it again on every connection (docs/protocol.md, "Delivery").
                log.info("device rejected %d envelope(s): %s", len(frame.ids), frame.reason)
                self._metrics.envelopes_rejected.labels(frame.reason).inc(len(frame.ids))
                self._acked(frame.ids)
                await self._acks.add(frame.ids)
            elif isinstance(frame, f.PingFrame):
                await self._acks.settled()  # a pong follows the commit of the acks before it
                await self._emit(f.pong(frame.n))
            else:
                raise ProtocolError(ErrorCode.ALREADY_AUTHENTICATED, "already authenticated")
        except ProtocolError as exc:
            await self._send_error(exc)

    def _ack_now(self, data: bytes) -> bool:
        """An ack frame from the WebSocket layer's callback (acks_now.py), taken as _handle
        takes it; False leaves the frame to the reader."""
        ids = read_ack(data, self._config.max_frame_bytes)
        if ids is None or not self._acks.add_now(ids):
            return False
        self._metrics.frame_in("ack")
        self._acked(ids)
        return True

    def _count_send(self, client_id: str) -> None:
        self._send_window = count_hit(
            self._send_window,
            self._clock.monotonic(),
            self._config.send_limit,
            "sends on this connection",
            ref=client_id,
        )

    def _committed(self, client_id: str, outcome: int | BaseException) -> None:
        """A send's batch is written (or failed): its `sent`, or its error, to the client."""
        self._sends.release()
        if isinstance(outcome, int):
            self._outbox.push("sent", dumps(f.sent(client_id, outcome)))
            return
        if isinstance(outcome, ProtocolError):
            # A copy with this send's ref: one exception may answer a whole batch.
            error = ProtocolError(
                outcome.code, outcome.message, **{"ref": client_id, **outcome.details}
            )
        else:
            log_failure(log, "send failed", exc=outcome)
            error = ProtocolError(
                ErrorCode.INTERNAL, "the server could not store this message; retry", ref=client_id
            )
        self._outbox.push("error", dumps(self._error_frame(error)))

    def _delete(self, ids: list[int], done: Callable[[int | BaseException], None]) -> None:
        assert self._principal is not None
        self._messages.acknowledge_then(self._principal, ids, done)

    def _delete_failed(self, exc: BaseException) -> None:
        """A delete failed alone; the connection carries on (a callback: the error frame is
        queued as it is, past the outbox's limit, which one frame per delete cannot flood)."""
        if not isinstance(exc, ProtocolError):
            log_failure(log, "ack failed", exc=exc)
            exc = ProtocolError(
                ErrorCode.INTERNAL,
                "the server could not delete these envelopes; they may come again",
            )
        self._outbox.push("error", dumps(self._error_frame(exc)))  # counted there

    def _acked(self, ids: list[int]) -> None:
        """Out of the window as the ack arrives (window.py): the pump refills it while the
        delete runs, and is woken only if it has something to read or hand over."""
        if self._window.acknowledged(ids):
            self._wake.set()

    # Frames out -----------------------------------------------------------------------------

    async def _emit(self, frame: dict[str, Any]) -> None:
        await self._outbox.emit(frame["type"], dumps(frame))

    async def _send_text(self, text: str) -> None:
        try:
            await self._ws.send_text(text)
        except (WebSocketDisconnect, OSError, RuntimeError):
            raise _Closed from None  # the peer is gone; the reader sees it too

    async def _send_frames(self, frames: list[bytes]) -> None:
        assert self._write_frames is not None
        try:
            await self._write_frames(frames)
        except (OSError, RuntimeError):
            raise _Closed from None

    async def _send_error(self, exc: ProtocolError) -> None:
        frame = self._error_frame(exc)
        if self._tg is None:  # before the writer runs (authentication)
            await self._ws.send_text(dumps(frame).decode())
        else:
            await self._emit(frame)

    def _error_frame(self, exc: ProtocolError) -> dict[str, Any]:
        self._metrics.errors.labels(str(exc.code)).inc()
        try:
            return f.error(exc)
        except ValidationError:
            # A detail the protocol does not declare (a programming error, caught by the schema
            # tests): logged loudly, and the client still gets the code, so that one refused
            # frame never ends the connection.
            log.exception("error frame for %s does not fit the protocol", exc.code)
            return f.error(ProtocolError(exc.code, "the server refused this frame"))

    async def _pump(self) -> None:
        """Reads the device's queue from the store, oldest first, whenever it is behind."""
        window = self._window
        while True:
            if self._close_code is not None:  # revoked or replaced (_end)
                raise _Closed
            # Cleared before looking, so a wake-up during the read is not lost.
            self._wake.clear()
            if window.room > 0:
                if window.caught_up:
                    self._flush_held()  # what is still held, now that acks made room
                elif await self._fill():
                    continue
            # Caught up, window full, or the last read: wait for the next wake-up.
            await self._wake.wait()
