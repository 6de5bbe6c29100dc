"""PostgreSQL store (asyncpg), for deployments with several nodes.

Same interface and migrations as the SQLite store. Reads run on a connection pool. The two
hot writes, storing messages and deleting acknowledged envelopes, go through one writer per
node that takes every request waiting at that moment and runs them as a few set-based
statements in one transaction: one commit (one WAL flush) for the batch, and one sender's
messages commit in the order they were queued, which a pool of independent transactions
would not guarantee. Across nodes no order is needed: a device is connected to one node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from porch.server.domain import Envelope
from porch.server.lifecycle import Component
from porch.server.retry import retry
from porch.server.store.base import (
    Account,
    ClaimedDevice,
    CodeSlot,
    Device,
    DeviceAuth,
    IdentityKeyTaken,
    OutgoingCopy,
    PreKey,
    RegistrationSession,
    StoredMessage,
    StoreError,
    SweepResult,
    UsernameTaken,
)
from porch.server.store.migrations import MIGRATIONS, POSTGRES_TYPES, render
from porch.server.store.rows import (
    ACCOUNT_COLS,
    DEVICE_COLS,
    ENVELOPE_COLS,
    account_from,
    device_from,
)

log = logging.getLogger("porch.store")

MAX_BATCH = 1000
MIGRATION_LOCK = 0x504F524348  # pg_advisory_lock key: "PORCH"


@dataclass(slots=True)
class _SendRequest:
    sender_account: str
    sender_device: int
    client_id: str
    recipient: str
    copies: Sequence[OutgoingCopy]
    now: int
    expires: int
    future: asyncio.Future[StoredMessage]


@dataclass(slots=True)
class _AckRequest:
    account_id: str
    device_id: int
    ids: Sequence[int]
    future: asyncio.Future[int]


class PostgresStore(Component):
    def __init__(self, dsn: str, pool_size: int = 10) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._queue: asyncio.Queue[_SendRequest | _AckRequest] = asyncio.Queue()
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
                self._writer = tg.create_task(self._write_forever())
                try:
                    yield
                finally:
                    self._writer.cancel()
        finally:
            # Writes queued after the writer stopped: their callers are told, never left waiting.
            while not self._queue.empty():
                _resolve([(self._queue.get_nowait(), StoreError("store is closed"))])
            pool, self._pool = self._pool, None
            if pool is not None:
                await pool.close()

    async def ping(self) -> None:
        if self._writer is None or self._writer.done():  # sends would never be answered
            raise StoreError("the store's writer is not running")
        await self.pool.fetchval("SELECT 1")

    async def secret(self, name: str, candidate: bytes) -> bytes:
        await self.pool.execute(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            name,
            candidate,
        )
        value = await self.pool.fetchval("SELECT value FROM server_secrets WHERE name = $1", name)
        return bytes(value)

    # Accounts and devices ------------------------------------------------------------------

    async def register(
        self,
        phone: str,
        password_hash: bytes,
        registration_id: int,
        name: str,
        now: int,
        new_account_id: str,
    ) -> tuple[str, int, bool]:
        async with self.pool.acquire() as c, c.transaction():
            existing = await c.fetchval(
                "SELECT id FROM accounts WHERE phone = $1 FOR UPDATE", phone
            )
            replaced = existing is not None
            if existing is None:
                account_id = new_account_id
                inserted = await c.fetchval(
                    "INSERT INTO accounts (id, phone, discoverable, created) VALUES ($1, $2, 1, $3)"
                    " ON CONFLICT (phone) DO NOTHING RETURNING id",
                    account_id,
                    phone,
                    now,
                )
                if inserted is None:  # registered concurrently: take it over like a re-register
                    account_id = await c.fetchval("SELECT id FROM accounts WHERE phone = $1", phone)
                    replaced = True
            else:
                account_id = existing
            if replaced:
                for table in ("envelopes", "one_time_keys", "fallback_keys", "devices"):
                    await c.execute(f"DELETE FROM {table} WHERE account_id = $1", account_id)
                # The new device starts afresh: the old devices' send ids mean nothing to it.
                await c.execute("DELETE FROM sent_messages WHERE sender_account = $1", account_id)
                await c.execute("UPDATE accounts SET master_key = NULL WHERE id = $1", account_id)
            await c.execute(
                "INSERT INTO devices (account_id, device_id, registration_id, name, password_hash,"
                " created, last_seen_day) VALUES ($1, 1, $2, $3, $4, $5, $6)",
                account_id,
                registration_id,
                name,
                password_hash,
                now,
                now // 86_400_000,
            )
            return str(account_id), 1, replaced

    async def get_account(self, account_id: str) -> Account | None:
        sql = f"SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1"
        return account_from(await self.pool.fetchrow(sql, account_id))

    async def get_account_by_phone(self, phone: str) -> Account | None:
        sql = f"SELECT {ACCOUNT_COLS} FROM accounts WHERE phone = $1"
        return account_from(await self.pool.fetchrow(sql, phone))

    async def get_account_by_username(self, username: str) -> Account | None:
        sql = f"SELECT {ACCOUNT_COLS} FROM accounts WHERE username = $1"
        return account_from(await self.pool.fetchrow(sql, username))

    async def set_username(self, account_id: str, username: str | None) -> None:
        try:
            await self.pool.execute(
                "UPDATE accounts SET username = $1 WHERE id = $2", username, account_id
            )
        except asyncpg.UniqueViolationError:
            raise UsernameTaken(username) from None

    async def set_discoverable(self, account_id: str, discoverable: bool) -> None:
        await self.pool.execute(
            "UPDATE accounts SET discoverable = $1 WHERE id = $2", int(discoverable), account_id
        )

    async def get_device_auth(self, account_id: str, device_id: int) -> DeviceAuth | None:
        row = await self.pool.fetchrow(
            "SELECT password_hash, registration_id FROM devices"
            " WHERE account_id = $1 AND device_id = $2",
            account_id,
            device_id,
        )
        return None if row is None else DeviceAuth(bytes(row[0]), row[1])

    async def list_devices(self, account_id: str) -> list[Device]:
        sql = f"SELECT {DEVICE_COLS} FROM devices WHERE account_id = $1 ORDER BY device_id"
        return [device_from(r) for r in await self.pool.fetch(sql, account_id)]

    async def delete_device(self, account_id: str, device_id: int) -> bool:
        async with self.pool.acquire() as c, c.transaction():
            for table in ("envelopes", "one_time_keys", "fallback_keys"):
                await c.execute(
                    f"DELETE FROM {table} WHERE account_id = $1 AND device_id = $2",
                    account_id,
                    device_id,
                )
            status = await c.execute(
                "DELETE FROM devices WHERE account_id = $1 AND device_id = $2",
                account_id,
                device_id,
            )
        return bool(status != "DELETE 0")

    async def touch_device(self, account_id: str, device_id: int, day: int) -> None:
        await self.pool.execute(
            "UPDATE devices SET last_seen_day = $1"
            " WHERE account_id = $2 AND device_id = $3 AND last_seen_day <> $1",
            day,
            account_id,
            device_id,
        )

    # Keys ----------------------------------------------------------------------------------

    async def set_identity(
        self,
        account_id: str,
        device_id: int,
        master_key: str,
        curve25519: str,
        ed25519: str,
        signature: str,
    ) -> None:
        try:
            async with self.pool.acquire() as c, c.transaction():
                await c.execute(
                    "UPDATE accounts SET master_key = $1 WHERE id = $2", master_key, account_id
                )
                await c.execute(
                    "UPDATE devices SET curve25519 = $1, ed25519 = $2, signature = $3"
                    " WHERE account_id = $4 AND device_id = $5",
                    curve25519,
                    ed25519,
                    signature,
                    account_id,
                    device_id,
                )
        except asyncpg.UniqueViolationError:  # the unique indexes of migration 4
            raise IdentityKeyTaken(account_id) from None

    async def add_one_time_keys(
        self, account_id: str, device_id: int, keys: Sequence[PreKey]
    ) -> int:
        async with self.pool.acquire() as c, c.transaction():
            fresh = [k for k in keys if not k.fallback]
            if fresh:
                await c.executemany(
                    "INSERT INTO one_time_keys (account_id, device_id, key_id, curve25519,"
                    " signature) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    [(account_id, device_id, k.key_id, k.curve25519, k.signature) for k in fresh],
                )
            for k in keys:
                if k.fallback:
                    await c.execute(
                        "INSERT INTO fallback_keys (account_id, device_id, key_id, curve25519,"
                        " signature) VALUES ($1, $2, $3, $4, $5)"
                        " ON CONFLICT (account_id, device_id) DO UPDATE SET key_id = $3,"
                        " curve25519 = $4, signature = $5",
                        account_id,
                        device_id,
                        k.key_id,
                        k.curve25519,
                        k.signature,
                    )
            return await _count_otks(c, account_id, device_id)

    async def count_one_time_keys(self, account_id: str, device_id: int) -> int:
        async with self.pool.acquire() as c:
            return await _count_otks(c, account_id, device_id)

    async def claim_keys(
        self, account_id: str, device_ids: Sequence[int] | None
    ) -> list[ClaimedDevice]:
        async with self.pool.acquire() as c, c.transaction():
            rows = await c.fetch(
                f"SELECT {DEVICE_COLS} FROM devices"
                " WHERE account_id = $1 AND curve25519 IS NOT NULL ORDER BY device_id",
                account_id,
            )
            devices = [device_from(r) for r in rows]
            if device_ids is not None:
                wanted = set(device_ids)
                devices = [d for d in devices if d.device_id in wanted]
            claimed = []
            for d in devices:
                # SKIP LOCKED: concurrent claims each take a different key, never the same one.
                row = await c.fetchrow(
                    "DELETE FROM one_time_keys WHERE ctid = (SELECT ctid FROM one_time_keys"
                    " WHERE account_id = $1 AND device_id = $2 ORDER BY key_id LIMIT 1"
                    " FOR UPDATE SKIP LOCKED) RETURNING key_id, curve25519, signature",
                    account_id,
                    d.device_id,
                )
                key: PreKey | None
                if row is not None:
                    key = PreKey(row[0], row[1], row[2], False)
                else:
                    fb = await c.fetchrow(
                        "SELECT key_id, curve25519, signature FROM fallback_keys"
                        " WHERE account_id = $1 AND device_id = $2",
                        account_id,
                        d.device_id,
                    )
                    key = None if fb is None else PreKey(fb[0], fb[1], fb[2], True)
                claimed.append(ClaimedDevice(d, key))
            return claimed

    # Registration sessions -----------------------------------------------------------------

    async def claim_code_send(
        self, phone: str, now: int, interval_ms: Callable[[int], int], quiet_ms: int
    ) -> CodeSlot:
        async with self.pool.acquire() as c, c.transaction():
            # The row is created first so that FOR UPDATE has a row to lock: concurrent
            # requests on any node queue here and only one of them gets the slot.
            await c.execute(
                "INSERT INTO registration_numbers (phone, sends, next_code, expires)"
                " VALUES ($1, 0, 0, 0) ON CONFLICT DO NOTHING",
                phone,
            )
            row = await c.fetchrow(
                "SELECT sends, next_code, expires FROM registration_numbers WHERE phone = $1"
                " FOR UPDATE",
                phone,
            )
            assert row is not None
            if now < row[1]:
                return CodeSlot(False, int(row[0]), int(row[1]))
            sends = 1 if now >= row[2] else int(row[0]) + 1
            next_code = now + interval_ms(sends)
            await c.execute(
                "UPDATE registration_numbers SET sends = $2, next_code = $3, expires = $4"
                " WHERE phone = $1",
                phone,
                sends,
                next_code,
                next_code + quiet_ms,
            )
            return CodeSlot(True, sends, next_code)

    async def put_registration_session(self, session: RegistrationSession) -> None:
        v = session
        await self.pool.execute(
            "INSERT INTO registration_sessions (id_hash, phone, code_hash, attempts, expires)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id_hash) DO UPDATE SET phone = $2,"
            " code_hash = $3, attempts = $4, expires = $5",
            v.id_hash,
            v.phone,
            v.code_hash,
            v.attempts,
            v.expires,
        )

    async def get_registration_session(self, id_hash: bytes) -> RegistrationSession | None:
        row = await self.pool.fetchrow(
            "SELECT id_hash, phone, code_hash, attempts, expires FROM registration_sessions"
            " WHERE id_hash = $1",
            id_hash,
        )
        if row is None:
            return None
        code_hash = None if row[2] is None else bytes(row[2])
        return RegistrationSession(bytes(row[0]), row[1], code_hash, row[3], row[4])

    async def count_session_attempt(self, id_hash: bytes) -> int:
        value = await self.pool.fetchval(
            "UPDATE registration_sessions SET attempts = attempts + 1 WHERE id_hash = $1"
            " RETURNING attempts",
            id_hash,
        )
        return 0 if value is None else int(value)

    async def consume_registration_session(self, id_hash: bytes) -> bool:
        # Of two concurrent verifies of one good code, the second deletes nothing here.
        status = await self.pool.execute(
            "DELETE FROM registration_sessions"
            " WHERE phone = (SELECT phone FROM registration_sessions WHERE id_hash = $1)",
            id_hash,
        )
        return _rowcount(status) > 0

    # Blocks --------------------------------------------------------------------------------

    async def set_block(self, account_id: str, blocked_id: str, blocked: bool) -> None:
        if blocked:
            sql = (
                "INSERT INTO blocks (account_id, blocked_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            )
        else:
            sql = "DELETE FROM blocks WHERE account_id = $1 AND blocked_id = $2"
        await self.pool.execute(sql, account_id, blocked_id)

    async def list_blocks(self, account_id: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT blocked_id FROM blocks WHERE account_id = $1 ORDER BY blocked_id", account_id
        )
        return [r[0] for r in rows]

    # Messages ------------------------------------------------------------------------------

    async def store_message(
        self,
        sender_account: str,
        sender_device: int,
        client_id: str,
        recipient: str,
        copies: Sequence[OutgoingCopy],
        now: int,
        expires: int,
    ) -> StoredMessage:
        fut: asyncio.Future[StoredMessage] = asyncio.get_running_loop().create_future()
        self._submit(
            _SendRequest(
                sender_account, sender_device, client_id, recipient, copies, now, expires, fut
            )
        )
        return await fut

    async def delete_envelopes(self, account_id: str, device_id: int, ids: Sequence[int]) -> int:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._submit(_AckRequest(account_id, device_id, ids, fut))
        return await fut

    def _submit(self, request: _SendRequest | _AckRequest) -> None:
        if self._writer is None or self._writer.done():  # nobody would ever answer
            raise StoreError("store is not open")
        self._queue.put_nowait(request)

    async def fetch_envelopes(self, account_id: str, device_id: int, limit: int) -> list[Envelope]:
        rows = await self.pool.fetch(
            f"SELECT {ENVELOPE_COLS}"
            " FROM envelopes WHERE account_id = $1 AND device_id = $2 ORDER BY id LIMIT $3",
            account_id,
            device_id,
            limit,
        )
        return [Envelope(*r) for r in rows]

    async def queue_depth(self) -> int:
        return int(await self.pool.fetchval("SELECT COUNT(*) FROM envelopes"))

    async def sweep(self, now: int) -> SweepResult:
        async with self.pool.acquire() as c, c.transaction():
            e = await c.execute("DELETE FROM envelopes WHERE expires <= $1", now)
            s = await c.execute("DELETE FROM sent_messages WHERE expires <= $1", now)
            v = await c.execute("DELETE FROM registration_sessions WHERE expires <= $1", now)
            n = await c.execute("DELETE FROM registration_numbers WHERE expires <= $1", now)
        return SweepResult(_rowcount(e), _rowcount(s), _rowcount(v) + _rowcount(n))

    # The writer ----------------------------------------------------------------------------

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except BaseException as exc:  # cancelled (closing), or a bug: nobody waits forever
                _resolve([(r, _failure(exc)) for r in batch])
                if not isinstance(exc, Exception):
                    raise
                log.error("the writer failed on a batch of %d", len(batch), exc_info=exc)

    async def _write(self, batch: list[_SendRequest | _AckRequest]) -> None:
        """The whole batch in one transaction; if that fails, each operation in a savepoint of
        its own, so that one bad operation fails alone (as in the SQLite store)."""
        sends = [r for r in batch if isinstance(r, _SendRequest)]
        acks = [r for r in batch if isinstance(r, _AckRequest)]

        async def attempt() -> tuple[list[StoredMessage], list[int]]:
            async with self.pool.acquire() as c, c.transaction():
                stored = await _store_sends(c, sends) if sends else []
                deleted = await _delete_acks(c, acks) if acks else []
            return stored, deleted

        try:
            # A lost connection or a failover is retried as a whole. A send retried after a
            # commit whose answer was lost is found by its idempotency record: answered as a
            # duplicate with its first timestamp, never stored twice.
            stored, deleted = await retry(attempt, is_transient, f"a write batch of {len(batch)}")
        except Exception as exc:
            log.warning("a write batch of %d failed (%s)", len(batch), type(exc).__name__)
            if len(batch) == 1:
                _resolve([(batch[0], _failure(exc))])
            else:
                await self._write_each(batch)
            return
        _resolve([*zip(sends, stored, strict=True), *zip(acks, deleted, strict=True)])

    async def _write_each(self, batch: list[_SendRequest | _AckRequest]) -> None:
        outcomes: list[tuple[_SendRequest | _AckRequest, object]] = []
        try:
            async with self.pool.acquire() as c, c.transaction():
                for r in batch:
                    try:
                        async with c.transaction():  # nested: a savepoint
                            if isinstance(r, _SendRequest):
                                result: object = (await _store_sends(c, [r]))[0]
                            else:
                                result = (await _delete_acks(c, [r]))[0]
                    except Exception as exc:
                        log.error("a write failed alone: %s", type(exc).__name__)
                        result = _failure(exc)
                    outcomes.append((r, result))
        except Exception as exc:  # the commit (or the connection) failed: nothing was written
            outcomes = [(r, _failure(exc)) for r in batch]
        _resolve(outcomes)  # only after the commit: a result means "stored"


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
    ) or (isinstance(exc, asyncpg.InterfaceError) and "connection" in str(exc).lower())


def _failure(exc: BaseException) -> StoreError:
    return StoreError(f"write failed: {type(exc).__name__}")


def _resolve(outcomes: Sequence[tuple[_SendRequest | _AckRequest, object]]) -> None:
    for r, outcome in outcomes:
        fut: asyncio.Future[Any] = r.future
        if fut.done():
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


async def _store_sends(c: asyncpg.Connection, sends: list[_SendRequest]) -> list[StoredMessage]:
    """Store a batch of sends in three statements, whatever its size."""
    keys = [(r.sender_account, r.sender_device, r.client_id) for r in sends]
    first: dict[tuple[str, int, str], int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    unique = sorted(first.values())
    inserted = await c.fetch(
        "INSERT INTO sent_messages (sender_account, sender_device, client_id, ts, expires)"
        " SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::bigint[], $5::bigint[])"
        " ON CONFLICT DO NOTHING RETURNING sender_account, sender_device, client_id",
        [sends[i].sender_account for i in unique],
        [sends[i].sender_device for i in unique],
        [sends[i].client_id for i in unique],
        [sends[i].now for i in unique],
        [sends[i].expires for i in unique],
    )
    new = {(r[0], r[1], r[2]) for r in inserted}
    old_ts: dict[tuple[str, int, str], int] = {}
    stale = [k for k in first if k not in new]
    if stale:
        rows = await c.fetch(
            "SELECT s.sender_account, s.sender_device, s.client_id, s.ts FROM sent_messages s"
            " JOIN unnest($1::text[], $2::int[], $3::text[]) AS t(a, d, c)"
            " ON s.sender_account = t.a AND s.sender_device = t.d AND s.client_id = t.c",
            [k[0] for k in stale],
            [k[1] for k in stale],
            [k[2] for k in stale],
        )
        old_ts = {(r[0], r[1], r[2]): int(r[3]) for r in rows}
    fresh = [i for i in unique if keys[i] in new]
    copies = [(i, copy) for i in fresh for copy in sends[i].copies]
    ids: list[int] = []
    if copies:
        # Ids are taken first so that the order of the envelopes is the order of the batch.
        ids = [
            r[0]
            for r in await c.fetch(
                "SELECT nextval(pg_get_serial_sequence('envelopes', 'id'))"
                " FROM generate_series(1, $1)",
                len(copies),
            )
        ]
        await c.execute(
            "INSERT INTO envelopes (id, account_id, device_id, sender_account, sender_device,"
            " ts, kind, body, expires) SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[],"
            " $4::text[], $5::int[], $6::bigint[], $7::smallint[], $8::text[], $9::bigint[])",
            ids,
            [sends[i].recipient for i, _ in copies],
            [copy.device_id for _, copy in copies],
            [sends[i].sender_account for i, _ in copies],
            [sends[i].sender_device for i, _ in copies],
            [sends[i].now for i, _ in copies],
            [copy.kind for _, copy in copies],
            [copy.body for _, copy in copies],
            [sends[i].expires for i, _ in copies],
        )
    envelopes: dict[int, list[Envelope]] = {}
    for envelope_id, (i, copy) in zip(ids, copies, strict=True):
        r = sends[i]
        envelopes.setdefault(i, []).append(
            Envelope(
                envelope_id,
                r.recipient,
                copy.device_id,
                r.sender_account,
                r.sender_device,
                r.now,
                copy.kind,
                copy.body,
            )
        )
    results = []
    for i, r in enumerate(sends):
        if first[keys[i]] == i and keys[i] in new:
            results.append(StoredMessage(r.now, tuple(envelopes.get(i, ())), False))
        else:
            ts = old_ts.get(keys[i], sends[first[keys[i]]].now)
            results.append(StoredMessage(ts, (), True))
    return results


async def _delete_acks(c: asyncpg.Connection, acks: list[_AckRequest]) -> list[int]:
    flat = [(i, a.account_id, a.device_id, n) for n, a in enumerate(acks) for i in a.ids]
    rows = await c.fetch(
        "DELETE FROM envelopes e USING unnest($1::bigint[], $2::text[], $3::int[], $4::int[])"
        " AS t(id, a, d, n) WHERE e.id = t.id AND e.account_id = t.a AND e.device_id = t.d"
        " RETURNING t.n",
        [f[0] for f in flat],
        [f[1] for f in flat],
        [f[2] for f in flat],
        [f[3] for f in flat],
    )
    counts = [0] * len(acks)
    for r in rows:
        counts[r[0]] += 1
    return counts


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


async def _count_otks(c: asyncpg.Connection, account_id: str, device_id: int) -> int:
    value = await c.fetchval(
        "SELECT COUNT(*) FROM one_time_keys WHERE account_id = $1 AND device_id = $2",
        account_id,
        device_id,
    )
    return int(value)


def _rowcount(status: str) -> int:
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0
