"""Sending, acknowledging and blocking: the rules of the message path (ARCHITECTURE.md).

A send is checked against the recipient's current device list, written as one envelope per
device in one transaction, acknowledged only after that commit, then announced on the bus.
Checking and committing are two steps so that a connection can check its sends in order and
then let the commits run concurrently: the store commits them in the order they were queued,
which keeps one sender's messages in order without a round trip per message.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.protocol.frames import SendFrame
from porch.server.bus.base import ALL_ACCOUNTS, Bus, DeviceEvent
from porch.server.clock import Clock
from porch.server.domain import Envelope
from porch.server.metrics import Metrics
from porch.server.services.accounts import Principal
from porch.server.store.base import OutgoingCopy, Store

CACHE_ACCOUNTS = 10_000


@dataclass(frozen=True, slots=True)
class CheckedSend:
    sender: Principal
    frame: SendFrame
    drop: bool  # blocked by the recipient: acknowledged like any other, stored nowhere


class MessageService:
    def __init__(
        self, store: Store, bus: Bus, clock: Clock, metrics: Metrics, retention_days: float
    ) -> None:
        self._store = store
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

    async def check(self, sender: Principal, frame: SendFrame) -> CheckedSend:
        """Refuse a send whose device list is not the recipient's current one, with exact ids."""
        current = await self._device_list(frame.to)
        if not current:
            raise ProtocolError(
                ErrorCode.UNKNOWN_RECIPIENT, "no account with keys has this id", ref=frame.id
            )
        expected = dict(current)
        if frame.to == sender.account_id:
            expected.pop(sender.device_id, None)  # never to oneself, only to one's other devices
        given = {m.device: m.registration for m in frame.messages}
        missing = sorted(expected.keys() - given.keys())
        extra = sorted(given.keys() - expected.keys())
        if missing or extra:
            raise ProtocolError(
                ErrorCode.MISMATCHED_DEVICES,
                "the recipient's devices have changed; fetch their keys and send again",
                ref=frame.id,
                missing=missing,
                extra=extra,
            )
        stale = sorted(d for d, reg in given.items() if expected[d] != reg)
        if stale:
            raise ProtocolError(
                ErrorCode.STALE_DEVICES,
                "some of the recipient's devices were re-registered; fetch their keys again",
                ref=frame.id,
                stale=stale,
            )
        drop = sender.account_id in await self._blocked_by(frame.to)
        return CheckedSend(sender, frame, drop)

    async def commit(self, checked: CheckedSend) -> int:
        """Persist (or, for online-only frames, just forward) a checked send. Returns the
        server timestamp the sender is acknowledged with."""
        frame, sender = checked.frame, checked.sender
        now = self._clock.now_ms()
        if checked.drop:
            return now
        if frame.ephemeral:
            await self._forward_ephemeral(sender, frame, now)
            return now
        stored = await self._store.store_message(
            sender.account_id,
            sender.device_id,
            frame.id,
            frame.to,
            [OutgoingCopy(m.device, m.kind, m.body) for m in frame.messages],
            now,
            now + self._retention_ms,
        )
        if not stored.duplicate:
            self._metrics.messages_stored.inc(len(stored.envelopes))
            for envelope in stored.envelopes:
                await self._bus.publish(
                    envelope.account_id, envelope.device_id, DeviceEvent(envelope=envelope)
                )
        return stored.ts

    async def _forward_ephemeral(self, sender: Principal, frame: SendFrame, now: int) -> None:
        # Online-only content (typing): handed to connected devices, never written anywhere.
        for m in frame.messages:
            envelope = Envelope.online_only(
                frame.to, m.device, sender.account_id, sender.device_id, now, m.kind, m.body
            )
            await self._bus.publish(frame.to, m.device, DeviceEvent(envelope=envelope))

    async def fetch(self, principal: Principal, limit: int) -> list[Envelope]:
        return await self._store.fetch_envelopes(principal.account_id, principal.device_id, limit)

    async def acknowledge(self, principal: Principal, ids: Sequence[int]) -> int:
        deleted = await self._store.delete_envelopes(principal.account_id, principal.device_id, ids)
        self._metrics.messages_delivered.inc(deleted)
        return deleted

    # Blocking ------------------------------------------------------------------------------

    async def set_block(self, principal: Principal, account_id: str, blocked: bool) -> None:
        if account_id == principal.account_id:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "an account cannot block itself")
        await self._store.set_block(principal.account_id, account_id, blocked)
        await self._bus.account_changed(principal.account_id)

    async def blocks(self, principal: Principal) -> list[str]:
        return await self._store.list_blocks(principal.account_id)
