"""The session's delivery from the bus: stored envelopes held for the window, frames and
online-only envelopes pushed to the outbox, hand-overs once a tick, and the end of a session
that was revoked or replaced.

A mixin of porch.server.gateway.connection.Connection; the attributes below are the
Connection's (set in its __init__). Separate because these are the bus callbacks and the
store reads that fill the delivery window (gateway/window.py, docs/performance.md), while
connection.py holds the session's life, its frames in and its frames out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from porch.protocol import frames as f
from porch.protocol.close_codes import CloseCode
from porch.protocol.codec import dumps
from porch.server.bus.base import DeviceEvent
from porch.server.domain import Envelope
from porch.server.gateway.delivery import deliverable, envelope_frames
from porch.server.metrics import observe_all

if TYPE_CHECKING:
    from porch.server.clock import Clock
    from porch.server.gateway.handover import HandOver
    from porch.server.gateway.outbox import Outbox
    from porch.server.gateway.window import DeliveryWindow
    from porch.server.lightsync import Flag
    from porch.server.metrics import Metrics
    from porch.server.services.accounts import Principal
    from porch.server.services.messages import MessageService


class DeliveryMixin:
    if TYPE_CHECKING:
        _messages: MessageService
        _clock: Clock
        _metrics: Metrics
        _outbox: Outbox
        _wake: Flag
        _flush_due: bool
        _handover: HandOver
        _window: DeliveryWindow
        _drained_sent: bool
        _close_code: int | None
        _principal: Principal | None
        _batch: bool

    def _on_event(self, event: DeviceEvent) -> None:
        """Bus callback (synchronous): hold a stored envelope for the pump, or wake it to read."""
        if event.revoked:
            self._end(CloseCode.AUTH)
            return
        if event.frame is not None:
            self._outbox.try_push(event.frame["type"], dumps(event.frame))
            return
        e = event.envelope
        window = self._window
        if e is None:  # resync: re-read the queue
            window.resync()
            self._wake.set()
            return
        if e.expires is not None and e.expires <= self._clock.now_ms():
            # A ttl ran out on the way here (a slow bus): never delivered (spec §7); the
            # stored copy goes with the next backlog read or sweep.
            return
        if e.ephemeral:  # online-only: best effort, never queued behind a slow reader
            self._outbox.try_push("envelope", deliverable(e, self._metrics))
            return
        if not window.offer(e):
            return
        if not window.caught_up:
            self._wake.set()  # the pump reads the store
        elif not self._flush_due:
            # What the bus announces in this tick goes out in one go once the tick's callbacks
            # have run: one callback for every connection's (handover.py), cheaper than waking
            # the pump (which takes what is still held when acks make room).
            self._flush_due = True
            self._handover.due(self._flush_held)

    def _flush_held(self, latencies: list[float] | None = None) -> None:
        self._flush_due = False
        if self._window.caught_up:
            self._deliver(self._window.take(self._clock.now_ms()), latencies)

    def _deliver(self, chosen: list[Envelope], latencies: list[float] | None = None) -> None:
        """Queue envelopes now in flight: bounded by the window, not by the outbox's limit.
        Their latencies go into the histogram here, or into `latencies` for the caller's one
        update of it (handover.py)."""
        if not chosen:
            return
        now = self._clock.now_ms()
        if len(chosen) == 1:  # live traffic, and each device of a group message
            e = chosen[0]
            if latencies is None:
                self._metrics.delivery_latency.observe(max(0, now - e.ts) / 1000)
            else:
                latencies.append(max(0, now - e.ts) / 1000)
            self._outbox.send_one("envelope", deliverable(e, self._metrics))
            return
        waited = [max(0, now - e.ts) / 1000 for e in chosen]
        if latencies is None:
            observe_all(self._metrics.delivery_latency, waited)
        else:
            latencies.extend(waited)
        outbox = self._outbox
        for kind, data in envelope_frames(chosen, self._batch, self._metrics):
            outbox.queue(kind, data)
        outbox.flush()  # written from here when the socket is idle (outbox.py)

    async def _fill(self) -> bool:
        """Queue the oldest envelopes not yet handed over, up to the window's room; whether
        there may be more to read at once."""
        assert self._principal is not None
        after, limit = self._window.next_read()
        batch = await self._messages.fetch(self._principal, limit, after)
        chosen, more = self._window.read(batch, limit)
        self._deliver(chosen)
        if self._window.caught_up and not self._drained_sent:
            self._drained_sent = True
            self._outbox.push("drained", dumps(f.drained()))
        return more

    def _on_replaced(self) -> None:
        """The same device connected again (here or on another node): this session ends."""
        self._end(CloseCode.REPLACED)

    def _end(self, code: int) -> None:
        """Ends the session from a bus callback: the pump sees the code and raises _Closed.

        A callback, so it never raises and never touches the task group. The bus calls it
        whatever state this session is in, including a session still ending (its task group
        finishing, its subscription not closed yet) when the same device connects again at
        once: creating a task in that group then raised RuntimeError inside the new
        connection's `subscribe`, and the new socket was dropped unanswered (issue 10; tests/
        integration/test_fast_reconnect.py). On Redis the same call comes from the bus's
        listener (a takeover from another node), which the error would have ended."""
        self._close_code = code
        self._wake.set()
