"""Sending, acknowledging and blocking: the rules of the message path (ARCHITECTURE.md).

A send names one or more destination accounts, each with its devices (docs/protocol.md,
"Sending"; spec A). It is checked against every destination's current device list at once and
refused with the exact missing, extra and stale devices of each wrong account, written as one
envelope per device in one transaction (a shared ciphertext, for Megolm, stored once), then
acknowledged only after that commit and announced on the bus. Destinations that block the
sender are skipped silently. Checking and committing are two steps so that a connection can
check its sends in order and then hand them over without waiting (`submit`): a tick's sends,
from every connection, are one store call (tick_batch.py), committed in the order they were
queued, which keeps one sender's messages in order without a round trip per message, and each
is answered from the batch's completion, with no task or future of its own (issue 10).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.protocol.fields import MAX_DEVICES_PER_DESTINATION
from porch.protocol.hot_frames import Send, SendTo
from porch.server.bus.base import ALL_ACCOUNTS, Bus, DeviceEvent
from porch.server.clock import Clock
from porch.server.domain import Envelope
from porch.server.metrics import Metrics
from porch.server.services.accounts import Principal
from porch.server.services.tick_batch import TickBatcher
from porch.server.store.base import (
    Acknowledged,
    OutgoingCopy,
    OutgoingDestination,
    OutgoingMessage,
    SharedPayload,
    Store,
    StoredMessage,
)

CACHE_ACCOUNTS = 10_000


@dataclass(slots=True)  # not frozen: one per send (store/records.py, OutgoingCopy)
class CheckedSend:
    sender: Principal
    frame: Send
    # The destinations to store (or forward): the frame's, less those that block the sender.
    destinations: tuple[SendTo, ...]

    @property
    def drop(self) -> bool:
        """Every destination blocks the sender: acknowledged like any other, stored nowhere."""
        return not self.destinations


class MessageService:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        clock: Clock,
        metrics: Metrics,
        retention_days: float,
        wake: Callable[[str, int], None] = lambda account_id, device_id: None,
        online: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._store = store
        self._sends: TickBatcher[OutgoingMessage, StoredMessage] = TickBatcher(store.store_messages)
        self._deletes: TickBatcher[Acknowledged, int] = TickBatcher(
            store.delete_many, self._count_delivered
        )
        # Queues a push for a device that may be offline (services/push_sender.py): it never
        # blocks, and decides itself whether the device is connected.
        self._wake = wake
        # Told how many envelopes of a batch a connection on this node took at once: those
        # devices are online, which is all a wake-up would have found out (push_sender.py).
        self._online = online
        self._bus = bus
        self._clock = clock
        self._metrics = metrics
        self._retention_ms = int(retention_days * 86_400_000)
        # account -> {device_id: registration_id} of its devices that have keys
        self._devices: OrderedDict[str, dict[int, int]] = OrderedDict()
        # account -> accounts it blocks
        self._blocks: OrderedDict[str, frozenset[str]] = OrderedDict()
        bus.on_account_changed(self._forget)

    def _forget(self, account_id: str) -> None:
        if account_id == ALL_ACCOUNTS:
            self._devices.clear()
            self._blocks.clear()
            return
        self._devices.pop(account_id, None)
        self._blocks.pop(account_id, None)

    async def _device_list(self, account_id: str) -> dict[int, int]:
        cached = self._devices.get(account_id)
        if cached is not None:
            self._devices.move_to_end(account_id)
            return cached
        # Keyed devices, and only those in the signed device list once there is one (spec C).
        devices = {
            d.device_id: d.registration_id for d in await self._store.current_devices(account_id)
        }
        self._devices[account_id] = devices
        if len(self._devices) > CACHE_ACCOUNTS:
            self._devices.popitem(last=False)
        return devices

    async def _blocked_by(self, account_id: str) -> frozenset[str]:
        cached = self._blocks.get(account_id)
        if cached is not None:
            return cached
        blocks = frozenset(await self._store.list_blocks(account_id))
        self._blocks[account_id] = blocks
        if len(self._blocks) > CACHE_ACCOUNTS:
            self._blocks.popitem(last=False)
        return blocks

    async def check(self, sender: Principal, frame: Send) -> CheckedSend:
        """Refuse a send whose device list is not every destination's current one, naming
        each wrong account's devices (spec A); skip the destinations that block the sender."""
        wrong: list[dict[str, Any]] = []
        mismatched = False
        keyed = False
        devices = self._devices
        for dest in frame.destinations:
            # The cache's hit inline: no coroutine per destination on the hot path.
            expected = devices.get(dest.account)
            if expected is None:
                expected = await self._device_list(dest.account)
            else:
                devices.move_to_end(dest.account)
            keyed = keyed or bool(expected)
            if dest.account == sender.account_id:
                # Sent copies go to one's other devices, never back to the sending one.
                expected = dict(expected)
                expected.pop(sender.device_id, None)
            given = {m.device: m.registration for m in dest.devices}
            if given == expected:  # the usual case: the sender's list is current
                continue
            missing = sorted(expected.keys() - given.keys())
            extra = sorted(given.keys() - expected.keys())
            stale = sorted(d for d in given.keys() & expected.keys() if expected[d] != given[d])
            if missing or extra or stale:
                mismatched = mismatched or bool(missing or extra)
                cap = MAX_DEVICES_PER_DESTINATION  # the error frame's bound per list
                wrong.append(
                    {
                        "account": dest.account,
                        "missing": missing[:cap],
                        "extra": extra[:cap],
                        "stale": stale[:cap],
                    }
                )
        if not keyed:
            raise ProtocolError(
                ErrorCode.UNKNOWN_RECIPIENT, "no account with keys has this id", ref=frame.id
            )
        if mismatched:
            raise ProtocolError(
                ErrorCode.MISMATCHED_DEVICES,
                "some recipients' devices have changed; fetch their keys and send again",
                ref=frame.id,
                accounts=wrong,
            )
        if wrong:
            raise ProtocolError(
                ErrorCode.STALE_DEVICES,
                "some recipients' devices were re-registered; fetch their keys again",
                ref=frame.id,
                accounts=wrong,
            )
        kept = []
        for dest in frame.destinations:
            blocks = self._blocks.get(dest.account)
            if blocks is None:
                blocks = await self._blocked_by(dest.account)
            if sender.account_id not in blocks:
                kept.append(dest)
        return CheckedSend(sender, frame, tuple(kept))

    async def commit(self, checked: CheckedSend) -> int:
        """Persist (or, for online-only frames, just forward) a checked send. Returns the
        server timestamp the sender is acknowledged with."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.submit(checked, lambda outcome: _settle(fut, outcome))
        return await fut

    def submit(self, checked: CheckedSend, done: Callable[[int | BaseException], None]) -> None:
        """commit without a task or a future per send (issue 10): the send joins this tick's
        batch, and done(timestamp or exception) runs on the loop once the batch is written
        and its envelopes are announced; a dropped or online-only send is answered at once."""
        frame, sender = checked.frame, checked.sender
        now = self._clock.now_ms()
        if checked.drop:
            done(now)
            return
        if frame.ephemeral:
            self._forward_ephemeral(checked, now)
            done(now)
            return
        destinations = [
            OutgoingDestination(
                d.account, tuple(OutgoingCopy.of(m.device, m.ciphertext()) for m in d.devices)
            )
            for d in checked.destinations
        ]
        # The shared body is stored only if a device that is kept uses it.
        uses_shared = any(c.body is None for d in destinations for c in d.copies)
        shared = (
            SharedPayload(frame.shared.kind, frame.shared.body)
            if frame.shared is not None and uses_shared
            else None
        )
        retention = now + self._retention_ms
        # A ttl (a disappearing message) shortens its envelopes' life, never lengthens it past
        # the retention (docs/protocol.md, "Sending"; spec §7).
        deadline = None if frame.ttl is None else min(now + frame.ttl * 1000, retention)
        message = OutgoingMessage(
            sender.account_id,
            sender.device_id,
            frame.id,
            destinations,
            shared,
            now,
            retention,
            deadline,
        )
        self._sends.add_callback(message, lambda outcome: self._stored(outcome, done))

    def _stored(
        self, outcome: StoredMessage | BaseException, done: Callable[[int | BaseException], None]
    ) -> None:
        """Published after the commit, before the sender hears of it (bus/base.py)."""
        if isinstance(outcome, BaseException):
            done(outcome)
            return
        if not outcome.duplicate:
            self._metrics.messages_stored.inc(len(outcome.envelopes))
            post, wake = self._bus.post, self._wake
            online = 0
            for envelope in outcome.envelopes:
                if post(envelope.account_id, envelope.device_id, DeviceEvent(envelope=envelope)):
                    online += 1  # a connection here took it: no wake-up to queue (issue 10)
                else:
                    wake(envelope.account_id, envelope.device_id)
            if online:
                self._online(online)
        done(outcome.ts)

    def _forward_ephemeral(self, checked: CheckedSend, now: int) -> None:
        # Online-only content (typing): handed to connected devices, never written anywhere.
        sender, shared = checked.sender, checked.frame.shared
        for dest in checked.destinations:
            for m in dest.devices:
                own = m.ciphertext()
                if own is None:
                    assert shared is not None  # a send is refused with a device without either
                    own = (shared.kind, shared.body)
                kind, body = own
                envelope = Envelope.online_only(
                    dest.account, m.device, sender.account_id, sender.device_id, now, kind, body
                )
                self._bus.post(dest.account, m.device, DeviceEvent(envelope=envelope))

    async def fetch(self, principal: Principal, limit: int, after: int = 0) -> list[Envelope]:
        """The device's oldest envelopes above `after`, not yet expired (the expired ones are
        deleted)."""
        return await self._store.fetch_envelopes(
            principal.account_id, principal.device_id, limit, self._clock.now_ms(), after
        )

    async def acknowledge(self, principal: Principal, ids: Sequence[int]) -> int:
        return await self._deletes.add(Acknowledged(principal.account_id, principal.device_id, ids))

    def acknowledge_then(
        self,
        principal: Principal,
        ids: Sequence[int],
        done: Callable[[int | BaseException], None],
    ) -> None:
        """acknowledge without a coroutine or a future: the ids join the tick's delete, and
        done(count deleted, or the exception) runs on the loop once it is written (the
        gateway's ack queue starts its next delete from there, gateway/acks.py)."""
        self._deletes.add_callback(
            Acknowledged(principal.account_id, principal.device_id, ids), done
        )

    def _count_delivered(self, outcomes: Sequence[int | BaseException]) -> None:
        """Once per batch of deletes, not once per ack frame."""
        n = sum(o for o in outcomes if not isinstance(o, BaseException))
        if n:
            self._metrics.messages_delivered.inc(n)

    # Blocking ------------------------------------------------------------------------------

    async def set_block(self, principal: Principal, account_id: str, blocked: bool) -> None:
        if account_id == principal.account_id:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "an account cannot block itself")
        await self._store.set_block(principal.account_id, account_id, blocked)
        await self._bus.account_changed(principal.account_id)

    async def blocks(self, principal: Principal) -> list[str]:
        return await self._store.list_blocks(principal.account_id)


def _settle(fut: asyncio.Future[int], outcome: int | BaseException) -> None:
    if fut.done():  # the waiter was cancelled
        return
    if isinstance(outcome, BaseException):
        fut.set_exception(outcome)
    else:
        fut.set_result(outcome)
