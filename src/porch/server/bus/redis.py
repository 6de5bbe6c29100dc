"""Redis bus: cross-node delivery, typing, account changes and connection takeover.

Each node subscribes to one channel per connected device ("porch:dev:<account>:<device>") and
to "porch:accounts". Publishing an envelope is a PUBLISH to the device channel (the envelopes
of one publish batch for one device: one PUBLISH, `coalesce`); Redis returns
how many nodes listen, so nothing is kept for a device that is offline: PostgreSQL holds the
envelope and the device's next connection reads it from there. Redis is never the record, so
when it restarts nothing is lost: the node resubscribes and wakes every local connection to
re-read its queue ("resync"), which covers wake-ups published while Redis was away.

A device that connects to a node publishes a takeover on its channel first; the node holding
its older connection closes it (Connection takeover, ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from porch.server.bus.base import ALL_ACCOUNTS, DeviceEvent, Handler
from porch.server.domain import Envelope
from porch.server.lifecycle import Component

log = logging.getLogger("porch.bus")

ACCOUNTS_CHANNEL = b"porch:accounts"
RECONNECT_DELAY = 0.5  # the first wait before reconnecting; doubled per failure up to the cap
RECONNECT_CAP = 4.0


def is_transient(exc: BaseException) -> bool:
    """Redis's transient failures: the connection lost, refused or timed out (a restart, a
    failover). They cost wake-ups, never messages (the store is the record), and are retried;
    any other error (a refused command) is a bug and is raised, loudly."""
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError))


def _raise_if_cancelled() -> None:
    """redis-py (8.1) can swallow a cancellation that lands inside a pub/sub command and
    return normally; a task of ours that was asked to stop then stops here, so leaving the bus
    never waits for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _channel(account_id: str, device_id: int) -> bytes:
    return f"porch:dev:{account_id}:{device_id}".encode()


def coalesce(batch: list[tuple[bytes, bytes | list[Any]]]) -> list[tuple[bytes, bytes]]:
    """A publish batch as PUBLISHes: the envelopes of one device channel in one message
    ("envs", in order, where the first of them stood), so that a tick's envelopes for a device
    cost one PUBLISH and one message to parse on the listening node, not one each (issue 10);
    a lone envelope stays an "env", which every node reads. Other messages keep their place."""
    out: list[tuple[bytes, bytes | list[list[Any]]]] = []
    envelopes_at: dict[bytes, int] = {}
    for channel, payload in batch:
        if isinstance(payload, bytes):
            out.append((channel, payload))
            continue
        at = envelopes_at.get(channel)
        if at is None:
            envelopes_at[channel] = len(out)
            out.append((channel, [payload]))
        else:
            group = out[at][1]
            assert isinstance(group, list)
            group.append(payload)
    return [
        (
            channel,
            payload
            if isinstance(payload, bytes)
            else orjson.dumps(
                {"t": "env", "e": payload[0]} if len(payload) == 1 else {"t": "envs", "e": payload}
            ),
        )
        for channel, payload in out
    ]


class _RedisSubscription:
    def __init__(
        self,
        bus: RedisBus,
        key: tuple[str, int],
        handler: Handler,
        on_replaced: Callable[[], None],
        token: str,
        order: int,
    ) -> None:
        self._bus = bus
        self.key = key
        self.handler = handler
        self.on_replaced = on_replaced
        self.token = token
        self.order = order

    def close(self) -> None:
        self._bus._unsubscribe(self)


class RedisBus(Component):
    def __init__(self, url: str, resync_interval: float = 60.0) -> None:
        self._url = url
        self._node = secrets.token_hex(6)
        # Blocking pool: a burst waits for a connection instead of failing with
        # MaxConnectionsError (publishing and subscribing are batched, so few are needed).
        self._redis: aioredis.Redis = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                url, max_connections=16, timeout=10
            )
        )
        self._pubsub: Any = None
        self._subs: dict[tuple[str, int], _RedisSubscription] = {}
        self._account_handlers: list[Callable[[str], None]] = []
        self._resync_interval = resync_interval
        self._connected = asyncio.Event()
        # (channel, encoded message), or (channel, an envelope's fields): see coalesce().
        self._outgoing: list[tuple[bytes, bytes | list[Any]]] = []
        self._changed: set[tuple[str, int]] = set()
        self._subscribe_wake = asyncio.Event()
        self._publish_wake = asyncio.Event()

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self._listen_forever()),
                    tg.create_task(self._resync_forever()),
                    tg.create_task(self._publish_forever()),
                    tg.create_task(self._subscriptions_forever()),
                ]
                try:
                    async with asyncio.timeout(10):
                        await self._connected.wait()
                except TimeoutError:
                    log.error(
                        "Redis at %s does not answer; running without cross-node wake-ups",
                        self._safe_url(),
                    )
                try:
                    yield
                finally:
                    for task in tasks:
                        task.cancel()
        finally:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.aclose()

    def _safe_url(self) -> str:
        return self._url.split("@")[-1]

    # Subscriptions -------------------------------------------------------------------------

    def subscribe(
        self,
        account_id: str,
        device_id: int,
        handler: Handler,
        on_replaced: Callable[[], None] = lambda: None,
        order: int = 0,
    ) -> _RedisSubscription:
        key = (account_id, device_id)
        token = f"{self._node}:{secrets.token_hex(4)}"
        old = self._subs.get(key)
        sub = _RedisSubscription(self, key, handler, on_replaced, token, order)
        if old is not None and old.order > order:
            on_replaced()  # an older connection that finished authenticating later (base.py)
            return sub
        self._subs[key] = sub
        if old is not None:
            old.on_replaced()
        self._enqueue(_channel(*key), orjson.dumps({"t": "takeover", "token": token}))
        self._sync_subscription(key)
        return sub

    def _unsubscribe(self, sub: _RedisSubscription) -> None:
        if self._subs.get(sub.key) is not sub:
            return
        del self._subs[sub.key]
        self._sync_subscription(sub.key)

    def _sync_subscription(self, key: tuple[str, int]) -> None:
        # One task brings Redis in line with _subs, many channels per SUBSCRIBE: a burst of
        # connections costs a few commands, not one connection from the pool each.
        self._changed.add(key)
        self._subscribe_wake.set()

    async def _subscriptions_forever(self) -> None:
        while True:
            await self._subscribe_wake.wait()
            self._subscribe_wake.clear()
            changed, self._changed = self._changed, set()
            pubsub = self._pubsub
            if pubsub is None:
                continue  # the listener subscribes to everything in _subs when it reconnects
            wanted = [_channel(*k) for k in changed if k in self._subs]
            unwanted = [_channel(*k) for k in changed if k not in self._subs]
            try:
                if wanted:
                    await pubsub.subscribe(*wanted)
                if unwanted:
                    await pubsub.unsubscribe(*unwanted)
                _raise_if_cancelled()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning(
                    "Redis (un)subscribe failed (%s); retried on reconnect", type(exc).__name__
                )

    # Publishing ----------------------------------------------------------------------------

    async def publish(self, account_id: str, device_id: int, event: DeviceEvent) -> None:
        self.post(account_id, device_id, event)

    def post(self, account_id: str, device_id: int, event: DeviceEvent) -> bool:
        local = self._subs.get((account_id, device_id))
        if local is not None:  # same node: no round trip through Redis
            local.handler(event)
            return True
        channel = _channel(account_id, device_id)
        if event.revoked:
            self._enqueue(channel, orjson.dumps({"t": "revoke"}))
        elif event.envelope is not None:
            e = event.envelope
            fields = [
                e.id,
                e.account_id,
                e.device_id,
                e.sender_account,
                e.sender_device,
                e.ts,
                e.kind,
                e.body,
                e.ephemeral,
                # Only when set: a send without ttl encodes as before, so a node not
                # yet upgraded still reads it during a rolling upgrade.
                *(() if e.expires is None else (e.expires,)),
            ]
            self._outgoing.append((channel, fields))
            self._publish_wake.set()
        else:
            self._enqueue(channel, orjson.dumps({"t": "frame", "f": event.frame}))
        return False  # another node's device, or none online: push decides

    def _enqueue(self, channel: bytes, payload: bytes) -> None:
        # Publishing is batched: one task sends everything waiting in one pipeline (one round
        # trip), instead of every send taking a connection of its own from the pool.
        self._outgoing.append((channel, payload))
        self._publish_wake.set()

    async def _publish_forever(self) -> None:
        while True:
            await self._publish_wake.wait()
            self._publish_wake.clear()
            batch, self._outgoing = self._outgoing, []
            if not batch:
                continue
            try:
                pipe = self._redis.pipeline(transaction=False)
                for channel, payload in coalesce(batch):
                    pipe.publish(channel, payload)
                await pipe.execute()
                _raise_if_cancelled()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # The envelopes are in the database: their devices read them on the next resync
                # (at once when Redis comes back, or every PORCH_RESYNC_SECONDS).
                log.warning(
                    "Redis publish of %d event(s) failed (%s); recipients catch up on resync",
                    len(batch),
                    type(exc).__name__,
                )

    async def connected(self, account_id: str, device_id: int) -> bool:
        # The node holding a device's connection listens on its channel: PUBSUB NUMSUB counts
        # the listeners, so presence needs no state of its own.
        if (account_id, device_id) in self._subs:
            return True
        try:
            answer = await self._redis.pubsub_numsub(_channel(account_id, device_id))
        except Exception as exc:
            if not is_transient(exc):
                raise
            return False  # unknown: a spurious wake-up costs less than a missed one
        return bool(answer and int(answer[0][1]) > 0)

    def on_account_changed(self, handler: Callable[[str], None]) -> None:
        self._account_handlers.append(handler)

    async def account_changed(self, account_id: str) -> None:
        for handler in self._account_handlers:
            handler(account_id)
        self._enqueue(ACCOUNTS_CHANNEL, account_id.encode())

    # Listening -----------------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                channels = [ACCOUNTS_CHANNEL, *(_channel(*k) for k in self._subs)]
                await pubsub.subscribe(*channels)
                self._pubsub = pubsub
                failures = 0
                if self._connected.is_set():
                    log.info("resubscribed to Redis")
                self._connected.set()
                # Wake-ups and cache invalidations may have been missed while we were away.
                self._resync(caches_too=True)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    _raise_if_cancelled()
                    if message is not None:
                        self._dispatch(message["channel"], message["data"])
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("Redis connection lost (%s); reconnecting", type(exc).__name__)
            finally:
                self._pubsub = None
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(min(RECONNECT_CAP, RECONNECT_DELAY * 2**failures))
            failures += 1

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self._resync_interval)
            # Caches too: an account change whose publish failed must not stay stale for ever.
            self._resync(caches_too=True)

    def _resync(self, caches_too: bool = False) -> None:
        # An empty event tells a connection to re-read its queue from the database.
        for sub in list(self._subs.values()):
            sub.handler(DeviceEvent())
        if caches_too:
            for handler in self._account_handlers:
                handler(ALL_ACCOUNTS)

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        if channel == ACCOUNTS_CHANNEL:
            for handler in self._account_handlers:
                handler(data.decode())
            return
        try:
            _, _, account_id, device = channel.decode().split(":")
            message = orjson.loads(data)
            sub = self._subs.get((account_id, int(device)))
        except (ValueError, orjson.JSONDecodeError):
            log.warning("ignored a malformed bus message")
            return
        if sub is None:
            return
        kind = message.get("t")
        if kind == "takeover":
            if message.get("token") != sub.token:
                del self._subs[sub.key]
                self._sync_subscription(sub.key)
                sub.on_replaced()
        elif kind == "env":
            sub.handler(DeviceEvent(envelope=Envelope(*message["e"])))
        elif kind == "envs":  # several of one batch (coalesce)
            for fields in message["e"]:
                sub.handler(DeviceEvent(envelope=Envelope(*fields)))
        elif kind == "frame":
            sub.handler(DeviceEvent(frame=message["f"]))
        elif kind == "revoke":
            sub.handler(DeviceEvent(revoked=True))
