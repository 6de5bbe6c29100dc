"""SQLite store: one connection on one thread, with group commit.

Every store call becomes a small function queued to a dedicated thread. The thread takes all
calls waiting at that moment, runs each inside a SAVEPOINT of a single transaction and commits
once, so a burst of sends costs one commit (one WAL append) rather than one each. A call that
fails rolls back to its own savepoint only. Results go back to the event loop in one hop per
batch. WAL mode keeps readers and the writer out of each other's way, and synchronous=NORMAL
in WAL mode keeps every committed transaction across a process crash
(https://www.sqlite.org/wal.html, "Durability"); FULL adds power-loss safety at fsync cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from porch.server.domain import Envelope
from porch.server.lifecycle import Component
from porch.server.retry import retry_sync
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
from porch.server.store.migrations import MIGRATIONS, SQLITE_TYPES, render
from porch.server.store.rows import (
    ACCOUNT_COLS,
    DEVICE_COLS,
    ENVELOPE_COLS,
    account_from,
    device_from,
)

log = logging.getLogger("porch.store")

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
MAX_BATCH = 512


class _Executor:
    """The store thread and its queue of pending calls.

    Every future handed out is resolved: by its batch, or, once the thread has stopped for any
    reason, with StoreError. A call is queued under the same lock that marks the executor
    closed, so no call can slip in behind the thread's last look at the queue."""

    def __init__(self, path: Path, synchronous: str, busy_timeout_ms: int) -> None:
        self._path = path
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._queue: queue.SimpleQueue[tuple[Op, asyncio.Future[Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._accepting = False
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name="porch-sqlite", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise StoreError(f"cannot open {self._path}: {self._startup_error}")

    async def call(self, op: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if not self._accepting:
                raise StoreError("the store is not open")
            self._queue.put((op, fut))
        return await fut

    @property
    def running(self) -> bool:
        return self._accepting

    def stop(self) -> None:
        with self._lock:
            if self._accepting:
                self._accepting = False
                self._queue.put(None)  # after everything already queued: that still runs
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        # Deleted envelopes are overwritten, not left in free pages (forward secrecy at rest).
        conn.execute("PRAGMA secure_delete=ON")
        _migrate(conn)
        return conn

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to start(), which raises it on the loop
            self._startup_error = exc
            self._ready.set()
            return
        with self._lock:
            self._accepting = True
        self._ready.set()
        try:
            self._serve(conn)
        finally:
            with self._lock:
                self._accepting = False
            self._fail_queued()
            conn.close()

    def _serve(self, conn: sqlite3.Connection) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._run_batch(conn, batch)
            if stop:
                return

    def _fail_queued(self) -> None:
        closed = StoreError("the store is closed")
        left: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                left.append((item[1], None, closed))
        if left:
            self._post(left)

    def _post(self, outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone: so is every waiter
            self._loop.call_soon_threadsafe(_resolve, outcomes)

    def _run_batch(
        self, conn: sqlite3.Connection, batch: list[tuple[Op, asyncio.Future[Any]]]
    ) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]
        try:
            outcomes = retry_sync(
                lambda: _attempt(conn, batch), is_transient, f"a SQLite batch of {len(batch)}"
            )
        except BaseException as exc:
            failure = StoreError(f"transaction failed: {type(exc).__name__}: {exc}")
            self._post([(fut, None, failure) for _, fut in batch])
            if not isinstance(exc, Exception):
                raise
            if not isinstance(exc, sqlite3.Error):
                log.error("a SQLite batch of %d failed", len(batch), exc_info=exc)
            return
        self._post(outcomes)


def is_transient(exc: BaseException) -> bool:
    """SQLite's transient failures: the write lock held past busy_timeout by another process
    (porch serve --workers, a backup) and I/O errors (https://www.sqlite.org/rescode.html:
    SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR). A retry of the whole batch is safe: a failed
    transaction has been rolled back, and each operation is a function of the database alone."""
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        return any(m in message for m in ("locked", "busy", "disk i/o error"))
    return isinstance(exc, OSError)


def _attempt(
    conn: sqlite3.Connection, batch: list[tuple[Op, asyncio.Future[Any]]]
) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]]:
    """The batch in one transaction, each operation in a savepoint of its own, so that one
    that fails rolls back alone. A transient failure of any operation fails the whole attempt,
    to be retried."""
    outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        for op, fut in batch:
            conn.execute("SAVEPOINT op")
            try:
                result = op(conn)
            except Exception as exc:  # handed to the caller's future, not swallowed
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                if is_transient(exc):
                    raise
                outcomes.append((fut, None, exc))
            else:
                conn.execute("RELEASE op")
                outcomes.append((fut, result, None))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return outcomes


def _resolve(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for fut, result, exc in outcomes:
        if fut.done():
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    for version, _title, statements in MIGRATIONS:
        # The version is read inside the write lock, so that several processes starting on
        # one file (porch serve --workers) apply each migration once.
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if version <= (row[0] or 0):
            conn.execute("ROLLBACK")
            continue
        try:
            for statement in statements:
                conn.execute(render(statement, SQLITE_TYPES))
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


class SqliteStore(Component):
    def __init__(
        self, path: Path, synchronous: str = "NORMAL", busy_timeout_ms: int = 5000
    ) -> None:
        self._exec = _Executor(path, synchronous, busy_timeout_ms)

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        await asyncio.to_thread(self._exec.start, asyncio.get_running_loop())
        try:
            yield
        finally:
            await asyncio.to_thread(self._exec.stop)

    async def ping(self) -> None:
        await self._exec.call(lambda c: c.execute("SELECT 1").fetchone())

    async def secret(self, name: str, candidate: bytes) -> bytes:
        def op(c: sqlite3.Connection) -> bytes:
            c.execute(
                "INSERT OR IGNORE INTO server_secrets (name, value) VALUES (?, ?)",
                (name, candidate),
            )
            row = c.execute("SELECT value FROM server_secrets WHERE name = ?", (name,)).fetchone()
            return bytes(row[0])

        return await self._exec.call(op)

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
        def op(c: sqlite3.Connection) -> tuple[str, int, bool]:
            row = c.execute("SELECT id FROM accounts WHERE phone = ?", (phone,)).fetchone()
            replaced = row is not None
            if row is None:
                account_id = new_account_id
                c.execute(
                    "INSERT INTO accounts (id, phone, discoverable, created) VALUES (?, ?, 1, ?)",
                    (account_id, phone, now),
                )
            else:
                account_id = row[0]
                # Re-registration replaces every device and drops what was queued for them.
                for table in ("envelopes", "one_time_keys", "fallback_keys", "devices"):
                    c.execute(f"DELETE FROM {table} WHERE account_id = ?", (account_id,))
                # The new device starts afresh: the old devices' send ids mean nothing to it.
                c.execute("DELETE FROM sent_messages WHERE sender_account = ?", (account_id,))
                c.execute("UPDATE accounts SET master_key = NULL WHERE id = ?", (account_id,))
            c.execute(
                "INSERT INTO devices (account_id, device_id, registration_id, name, password_hash,"
                " created, last_seen_day) VALUES (?, 1, ?, ?, ?, ?, ?)",
                (account_id, registration_id, name, password_hash, now, now // 86_400_000),
            )
            return account_id, 1, replaced

        return await self._exec.call(op)

    async def get_account(self, account_id: str) -> Account | None:
        sql = f"SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?"
        return await self._exec.call(
            lambda c: account_from(c.execute(sql, (account_id,)).fetchone())
        )

    async def get_account_by_phone(self, phone: str) -> Account | None:
        sql = f"SELECT {ACCOUNT_COLS} FROM accounts WHERE phone = ?"
        return await self._exec.call(lambda c: account_from(c.execute(sql, (phone,)).fetchone()))

    async def get_account_by_username(self, username: str) -> Account | None:
        sql = f"SELECT {ACCOUNT_COLS} FROM accounts WHERE username = ?"
        return await self._exec.call(lambda c: account_from(c.execute(sql, (username,)).fetchone()))

    async def set_username(self, account_id: str, username: str | None) -> None:
        def op(c: sqlite3.Connection) -> None:
            try:
                c.execute("UPDATE accounts SET username = ? WHERE id = ?", (username, account_id))
            except sqlite3.IntegrityError:
                raise UsernameTaken(username) from None

        await self._exec.call(op)

    async def set_discoverable(self, account_id: str, discoverable: bool) -> None:
        await self._exec.call(
            lambda c: c.execute(
                "UPDATE accounts SET discoverable = ? WHERE id = ?", (int(discoverable), account_id)
            )
        )

    async def get_device_auth(self, account_id: str, device_id: int) -> DeviceAuth | None:
        def op(c: sqlite3.Connection) -> DeviceAuth | None:
            row = c.execute(
                "SELECT password_hash, registration_id FROM devices"
                " WHERE account_id = ? AND device_id = ?",
                (account_id, device_id),
            ).fetchone()
            return None if row is None else DeviceAuth(bytes(row[0]), row[1])

        return await self._exec.call(op)

    async def list_devices(self, account_id: str) -> list[Device]:
        sql = f"SELECT {DEVICE_COLS} FROM devices WHERE account_id = ? ORDER BY device_id"
        return await self._exec.call(
            lambda c: [device_from(r) for r in c.execute(sql, (account_id,)).fetchall()]
        )

    async def delete_device(self, account_id: str, device_id: int) -> bool:
        def op(c: sqlite3.Connection) -> bool:
            for table in ("envelopes", "one_time_keys", "fallback_keys"):
                c.execute(
                    f"DELETE FROM {table} WHERE account_id = ? AND device_id = ?",
                    (account_id, device_id),
                )
            cur = c.execute(
                "DELETE FROM devices WHERE account_id = ? AND device_id = ?",
                (account_id, device_id),
            )
            return cur.rowcount > 0

        return await self._exec.call(op)

    async def touch_device(self, account_id: str, device_id: int, day: int) -> None:
        await self._exec.call(
            lambda c: c.execute(
                "UPDATE devices SET last_seen_day = ? WHERE account_id = ? AND device_id = ?",
                (day, account_id, device_id),
            )
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
        def op(c: sqlite3.Connection) -> None:
            c.execute("UPDATE accounts SET master_key = ? WHERE id = ?", (master_key, account_id))
            try:
                c.execute(
                    "UPDATE devices SET curve25519 = ?, ed25519 = ?, signature = ?"
                    " WHERE account_id = ? AND device_id = ?",
                    (curve25519, ed25519, signature, account_id, device_id),
                )
            except sqlite3.IntegrityError:  # the unique indexes of migration 4
                raise IdentityKeyTaken(account_id) from None

        await self._exec.call(op)

    async def add_one_time_keys(
        self, account_id: str, device_id: int, keys: Sequence[PreKey]
    ) -> int:
        def op(c: sqlite3.Connection) -> int:
            for k in keys:
                if k.fallback:
                    c.execute(
                        "INSERT OR REPLACE INTO fallback_keys"
                        " (account_id, device_id, key_id, curve25519, signature)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (account_id, device_id, k.key_id, k.curve25519, k.signature),
                    )
                else:
                    c.execute(
                        "INSERT OR IGNORE INTO one_time_keys"
                        " (account_id, device_id, key_id, curve25519, signature)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (account_id, device_id, k.key_id, k.curve25519, k.signature),
                    )
            return _count_otks(c, account_id, device_id)

        return await self._exec.call(op)

    async def count_one_time_keys(self, account_id: str, device_id: int) -> int:
        return await self._exec.call(lambda c: _count_otks(c, account_id, device_id))

    async def claim_keys(
        self, account_id: str, device_ids: Sequence[int] | None
    ) -> list[ClaimedDevice]:
        # One transaction on the single store thread: a one-time key is selected and deleted
        # before any other claim runs, so no key is ever handed out twice.
        def op(c: sqlite3.Connection) -> list[ClaimedDevice]:
            sql = (
                f"SELECT {DEVICE_COLS} FROM devices WHERE account_id = ? AND curve25519 IS NOT NULL"
            )
            devices = [device_from(r) for r in c.execute(sql, (account_id,)).fetchall()]
            if device_ids is not None:
                wanted = set(device_ids)
                devices = [d for d in devices if d.device_id in wanted]
            claimed = []
            for d in devices:
                row = c.execute(
                    "SELECT key_id, curve25519, signature FROM one_time_keys"
                    " WHERE account_id = ? AND device_id = ? ORDER BY key_id LIMIT 1",
                    (account_id, d.device_id),
                ).fetchone()
                key: PreKey | None
                if row is not None:
                    c.execute(
                        "DELETE FROM one_time_keys"
                        " WHERE account_id = ? AND device_id = ? AND key_id = ?",
                        (account_id, d.device_id, row[0]),
                    )
                    key = PreKey(row[0], row[1], row[2], False)
                else:
                    fb = c.execute(
                        "SELECT key_id, curve25519, signature FROM fallback_keys"
                        " WHERE account_id = ? AND device_id = ?",
                        (account_id, d.device_id),
                    ).fetchone()
                    key = None if fb is None else PreKey(fb[0], fb[1], fb[2], True)
                claimed.append(ClaimedDevice(d, key))
            return claimed

        return await self._exec.call(op)

    # Registration sessions -----------------------------------------------------------------

    async def claim_code_send(
        self, phone: str, now: int, interval_ms: Callable[[int], int], quiet_ms: int
    ) -> CodeSlot:
        # One transaction on the single store thread: two requests never both get the slot.
        def op(c: sqlite3.Connection) -> CodeSlot:
            row = c.execute(
                "SELECT sends, next_code, expires FROM registration_numbers WHERE phone = ?",
                (phone,),
            ).fetchone()
            if row is not None and now < row[1]:
                return CodeSlot(False, int(row[0]), int(row[1]))
            sends = 1 if row is None or now >= row[2] else int(row[0]) + 1
            next_code = now + interval_ms(sends)
            c.execute(
                "INSERT OR REPLACE INTO registration_numbers (phone, sends, next_code, expires)"
                " VALUES (?, ?, ?, ?)",
                (phone, sends, next_code, next_code + quiet_ms),
            )
            return CodeSlot(True, sends, next_code)

        return await self._exec.call(op)

    async def put_registration_session(self, session: RegistrationSession) -> None:
        v = session
        await self._exec.call(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO registration_sessions"
                " (id_hash, phone, code_hash, attempts, expires) VALUES (?, ?, ?, ?, ?)",
                (v.id_hash, v.phone, v.code_hash, v.attempts, v.expires),
            )
        )

    async def get_registration_session(self, id_hash: bytes) -> RegistrationSession | None:
        def op(c: sqlite3.Connection) -> RegistrationSession | None:
            row = c.execute(
                "SELECT id_hash, phone, code_hash, attempts, expires FROM registration_sessions"
                " WHERE id_hash = ?",
                (id_hash,),
            ).fetchone()
            if row is None:
                return None
            code_hash = None if row[2] is None else bytes(row[2])
            return RegistrationSession(bytes(row[0]), row[1], code_hash, row[3], row[4])

        return await self._exec.call(op)

    async def count_session_attempt(self, id_hash: bytes) -> int:
        def op(c: sqlite3.Connection) -> int:
            row = c.execute(
                "UPDATE registration_sessions SET attempts = attempts + 1 WHERE id_hash = ?"
                " RETURNING attempts",
                (id_hash,),
            ).fetchone()
            return 0 if row is None else int(row[0])

        return await self._exec.call(op)

    async def consume_registration_session(self, id_hash: bytes) -> bool:
        sql = (
            "DELETE FROM registration_sessions"
            " WHERE phone = (SELECT phone FROM registration_sessions WHERE id_hash = ?)"
        )
        return await self._exec.call(lambda c: c.execute(sql, (id_hash,)).rowcount > 0)

    # Blocks --------------------------------------------------------------------------------

    async def set_block(self, account_id: str, blocked_id: str, blocked: bool) -> None:
        if blocked:
            sql = "INSERT OR IGNORE INTO blocks (account_id, blocked_id) VALUES (?, ?)"
        else:
            sql = "DELETE FROM blocks WHERE account_id = ? AND blocked_id = ?"
        await self._exec.call(lambda c: c.execute(sql, (account_id, blocked_id)))

    async def list_blocks(self, account_id: str) -> list[str]:
        sql = "SELECT blocked_id FROM blocks WHERE account_id = ? ORDER BY blocked_id"
        return await self._exec.call(
            lambda c: [r[0] for r in c.execute(sql, (account_id,)).fetchall()]
        )

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
        def op(c: sqlite3.Connection) -> StoredMessage:
            inserted = c.execute(
                "INSERT OR IGNORE INTO sent_messages"
                " (sender_account, sender_device, client_id, ts, expires) VALUES (?, ?, ?, ?, ?)",
                (sender_account, sender_device, client_id, now, expires),
            ).rowcount
            if not inserted:  # a resend: acknowledge with the first copy's timestamp
                row = c.execute(
                    "SELECT ts FROM sent_messages"
                    " WHERE sender_account = ? AND sender_device = ? AND client_id = ?",
                    (sender_account, sender_device, client_id),
                ).fetchone()
                return StoredMessage(int(row[0]), (), True)
            stored = []
            for copy in copies:
                cur = c.execute(
                    "INSERT INTO envelopes (account_id, device_id, sender_account, sender_device,"
                    " ts, kind, body, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        recipient,
                        copy.device_id,
                        sender_account,
                        sender_device,
                        now,
                        copy.kind,
                        copy.body,
                        expires,
                    ),
                )
                assert cur.lastrowid is not None
                stored.append(
                    Envelope(
                        cur.lastrowid,
                        recipient,
                        copy.device_id,
                        sender_account,
                        sender_device,
                        now,
                        copy.kind,
                        copy.body,
                    )
                )
            return StoredMessage(now, tuple(stored), False)

        return await self._exec.call(op)

    async def fetch_envelopes(self, account_id: str, device_id: int, limit: int) -> list[Envelope]:
        def op(c: sqlite3.Connection) -> list[Envelope]:
            rows = c.execute(
                f"SELECT {ENVELOPE_COLS}"
                " FROM envelopes WHERE account_id = ? AND device_id = ? ORDER BY id LIMIT ?",
                (account_id, device_id, limit),
            ).fetchall()
            return [Envelope(*r) for r in rows]

        return await self._exec.call(op)

    async def delete_envelopes(self, account_id: str, device_id: int, ids: Sequence[int]) -> int:
        def op(c: sqlite3.Connection) -> int:
            # Scoped to the device, so a device can only ever delete its own envelopes.
            cur = c.executemany(
                "DELETE FROM envelopes WHERE id = ? AND account_id = ? AND device_id = ?",
                [(i, account_id, device_id) for i in ids],
            )
            return cur.rowcount

        return await self._exec.call(op)

    async def queue_depth(self) -> int:
        return await self._exec.call(
            lambda c: int(c.execute("SELECT COUNT(*) FROM envelopes").fetchone()[0])
        )

    async def sweep(self, now: int) -> SweepResult:
        def op(c: sqlite3.Connection) -> SweepResult:
            e = c.execute("DELETE FROM envelopes WHERE expires <= ?", (now,)).rowcount
            s = c.execute("DELETE FROM sent_messages WHERE expires <= ?", (now,)).rowcount
            v = c.execute("DELETE FROM registration_sessions WHERE expires <= ?", (now,)).rowcount
            v += c.execute("DELETE FROM registration_numbers WHERE expires <= ?", (now,)).rowcount
            return SweepResult(e, s, v)

        return await self._exec.call(op)


def _count_otks(c: sqlite3.Connection, account_id: str, device_id: int) -> int:
    row = c.execute(
        "SELECT COUNT(*) FROM one_time_keys WHERE account_id = ? AND device_id = ?",
        (account_id, device_id),
    ).fetchone()
    return int(row[0])
