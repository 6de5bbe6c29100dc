"""PostgreSQL store (asyncpg), for deployments with several nodes.

The same per-domain stores and migrations as the SQLite store, over a connection pool: each
operation runs on one pooled connection, in a transaction if it writes, and is retried when
the failure is transient (is_transient). The two hot writes go through the batch writer
(pg_writer.py) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

import asyncpg

from porch.server.lifecycle import Component
from porch.server.retry import retry
from porch.server.store.accounts import SqlAccountStore
from porch.server.store.base import (
    Acknowledged,
    OutgoingMessage,
    StoredMessage,
    StoreError,
)
from porch.server.store.devices import SqlDeviceStore
from porch.server.store.groups import SqlGroupStore
from porch.server.store.keys import SqlKeyStore
from porch.server.store.media import SqlMediaStore
from porch.server.store.messages import SqlMessageStore, deadline_of
from porch.server.store.migrations import MIGRATIONS, POSTGRES_TYPES, render
from porch.server.store.pg_writer import AckRequest, BatchWriter, Request, SendRequest
from porch.server.store.push import SqlPushStore
from porch.server.store.registration import SqlRegistrationStore
from porch.server.store.sql import OpFactory, run_asyncpg

log = logging.getLogger("porch.store")

T = TypeVar("T")
MIGRATION_LOCK = 0x504F524348  # pg_advisory_lock key: "PORCH"


class PostgresStore(
    SqlAccountStore,
    SqlKeyStore,
    SqlRegistrationStore,
    SqlMessageStore,
    SqlGroupStore,
    SqlDeviceStore,
    SqlMediaStore,
    SqlPushStore,
    Component,
):
    def __init__(self, dsn: str, pool_size: int = 10) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._batches = BatchWriter(lambda: self.pool, is_transient)
        self._writer: asyncio.Task[None] | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        try:
            self._pool = await retry(
                lambda: asyncpg.create_pool(
                    self._dsn, min_size=2, max_size=self._pool_size, command_timeout=30
                ),
                is_transient,
                "connecting to PostgreSQL",
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from None
        try:
            async with self.pool.acquire() as conn:
                await _migrate(conn)
            async with asyncio.TaskGroup() as tg:
                self._writer = tg.create_task(self._batches.run())
                try:
                    yield
                finally:
                    self._writer.cancel()
        finally:
            # Writes queued after the writer stopped: their callers are told, never left waiting.
            self._batches.fail_queued()
            pool, self._pool = self._pool, None
            if pool is not None:
                await pool.close()

    async def ping(self) -> None:
        if self._writer is None or self._writer.done():  # sends would never be answered
            raise StoreError("the store's writer is not running")
        await self.pool.fetchval("SELECT 1")

    # The executor: one pooled connection per operation -------------------------------------

    async def _read(self, op: OpFactory[T]) -> T:
        return await retry(lambda: self._once(op, False), is_transient, "a PostgreSQL read")

    async def _write(self, op: OpFactory[T]) -> T:
        return await retry(lambda: self._once(op, True), is_transient, "a PostgreSQL write")

    async def _once(self, op: OpFactory[T], transaction: bool) -> T:
        async with self.pool.acquire() as c:
            try:
                if not transaction:
                    return await run_asyncpg(c, op())
                async with c.transaction():
                    return await run_asyncpg(c, op())
            except Exception as exc:
                if is_transient(exc):
                    # A connection that lost its server may still look usable to asyncpg (its
                    # protocol state half-way): dropped, so that the pool opens a fresh one.
                    c.terminate()
                raise

    # The hot writes: through the batch writer ----------------------------------------------

    def store_messages(
        self, sends: Sequence[OutgoingMessage]
    ) -> asyncio.Future[list[StoredMessage | Exception]]:
        futures = [self._send_request(s) for s in sends]
        # The writer takes them in one batch (one set-based insert) unless it is busy.
        return asyncio.gather(*futures, return_exceptions=True)  # type: ignore[return-value]

    def _send_request(self, s: OutgoingMessage) -> asyncio.Future[StoredMessage]:
        fut: asyncio.Future[StoredMessage] = asyncio.get_running_loop().create_future()
        deadline = deadline_of(s.expires, s.envelope_expires)
        fields = (s.sender_account, s.sender_device, s.client_id, s.destinations, s.shared)
        self._submit(SendRequest(*fields, s.now, s.expires, deadline, fut))
        return fut

    def delete_many(self, acks: Sequence[Acknowledged]) -> asyncio.Future[list[int | Exception]]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[int]] = []
        for a in acks:
            fut: asyncio.Future[int] = loop.create_future()
            self._submit(AckRequest(a.account_id, a.device_id, a.ids, fut))
            futures.append(fut)
        return asyncio.gather(*futures, return_exceptions=True)  # type: ignore[return-value]

    def _submit(self, request: Request) -> None:
        if self._writer is None or self._writer.done():  # nobody would ever answer
            raise StoreError("store is not open")
        self._batches.queue.put_nowait(request)


def is_transient(exc: BaseException) -> bool:
    """PostgreSQL's transient failures, retried with backoff (retry.py): the connection lost or
    refused (a restart, a failover, the pool's connections cut), too many connections, and
    the two errors PostgreSQL asks clients to retry, serialization failures and deadlocks
    (https://www.postgresql.org/docs/current/mvcc-serialization-failure-handling.html)."""
    return isinstance(
        exc,
        (
            OSError,
            TimeoutError,
            asyncpg.PostgresConnectionError,
            asyncpg.CannotConnectNowError,
            asyncpg.TooManyConnectionsError,
            asyncpg.AdminShutdownError,
            asyncpg.SerializationError,
            asyncpg.DeadlockDetectedError,
        ),
    ) or (
        # An idle pooled connection whose server went away answers its next query with one of
        # these (asyncpg 0.32: "another operation is in progress", "connection is closed"):
        # the connection is dropped (_once) and the query runs on a fresh one.
        isinstance(exc, asyncpg.InternalClientError | asyncpg.InterfaceError)
        and any(m in str(exc) for m in ("another operation", "connection"))
    )


async def _migrate(conn: asyncpg.Connection) -> None:
    # Several nodes may start at once: the advisory lock lets one migrate while the rest wait.
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = await conn.fetchval("SELECT MAX(version) FROM schema_version") or 0
        for version, _title, statements in MIGRATIONS:
            if version <= current:
                continue
            async with conn.transaction():
                for statement in statements:
                    await conn.execute(render(statement, POSTGRES_TYPES))
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
            log.info("applied migration %d", version)
    finally:
        with contextlib.suppress(Exception):
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
