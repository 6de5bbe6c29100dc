"""SQLite store: one connection on one thread, with group commit.

Every store call becomes a small function queued to a dedicated thread. The thread takes all
calls waiting at that moment, runs them in a single transaction and commits once, so a burst
of sends costs one commit (one WAL append) rather than one each. A call that fails fails
alone: the batch is rolled back and runs again with each call in a SAVEPOINT of its own
(savepoints only when needed: `_Executor._attempt`). Results go back to the event loop in one
hop per batch. WAL mode keeps readers and the writer out of each other's way, and synchronous=NORMAL
in WAL mode keeps every committed transaction across a process crash
(https://www.sqlite.org/wal.html, "Durability"); FULL adds power-loss safety at fsync cost.
Checkpoints run on a thread of their own, not inside a commit (sqlite_checkpoint.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from porch.failures import log_failure
from porch.server.lifecycle import Component
from porch.server.retry import retry_sync
from porch.server.store.accounts import SqlAccountStore
from porch.server.store.base import Acknowledged, OutgoingMessage, StoredMessage, StoreError
from porch.server.store.devices import SqlDeviceStore
from porch.server.store.groups import SqlGroupStore
from porch.server.store.keys import SqlKeyStore
from porch.server.store.media import SqlMediaStore
from porch.server.store.messages import SqlMessageStore
from porch.server.store.migrations import MIGRATIONS, SQLITE_TYPES, render
from porch.server.store.push import SqlPushStore
from porch.server.store.registration import SqlRegistrationStore
from porch.server.store.sql import OpFactory, run_sqlite
from porch.server.store.sqlite_batch import NeedsIsolation, delete_acks, store_sends
from porch.server.store.sqlite_checkpoint import Checkpointer

log = logging.getLogger("porch.store")

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
MAX_BATCH = 512
# After an operation fails, this many batches run with a savepoint per operation from the start.
ISOLATE_AFTER_FAILURE = 64


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
        self._isolate_next = 0  # batches still to run with a savepoint per operation

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
        return await self.submit(op)

    def submit(self, op: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        # The loop start() was given, where there is one: no getpid() per call (tick_batch.py).
        loop = self._loop or asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if not self._accepting:
                raise StoreError("the store is not open")
            self._queue.put((op, fut))
        return fut

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
        checkpoints = Checkpointer(self._path, self._synchronous)
        if checkpoints.start():  # the WAL's syncs off the commit path (sqlite_checkpoint.py)
            conn.execute("PRAGMA wal_autocheckpoint=0")
        with self._lock:
            self._accepting = True
        self._ready.set()
        try:
            self._serve(conn)
        finally:
            with self._lock:
                self._accepting = False
            self._fail_queued()
            checkpoints.stop()
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

    def _attempt(
        self, conn: sqlite3.Connection, batch: list[tuple[Op, asyncio.Future[Any]]]
    ) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]]:
        """The batch without savepoints while operations succeed (two statements fewer per
        operation, the largest share of a small batch's cost: docs/performance.md, "Latency at
        half rate"); if one fails, the batch is rolled back whole and runs again with a
        savepoint per operation, so it still fails alone, and so do the next ISOLATE_AFTER_FAILURE
        batches (a client that keeps failing cannot make every batch run twice)."""
        if self._isolate_next > 0:
            self._isolate_next -= 1
            return _attempt(conn, batch)
        outcomes = _attempt_together(conn, batch)
        if outcomes is not None:
            return outcomes
        if len(batch) > 1:
            self._isolate_next = ISOLATE_AFTER_FAILURE
        return _attempt(conn, batch)

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
                lambda: self._attempt(conn, batch), is_transient, f"a SQLite batch of {len(batch)}"
            )
        except BaseException as exc:
            failure = StoreError(f"transaction failed: {type(exc).__name__}")
            self._post([(fut, None, failure) for _, fut in batch])
            if not isinstance(exc, Exception):
                raise
            if not isinstance(exc, sqlite3.Error):
                log_failure(log, "a SQLite batch of %d failed", len(batch), exc=exc)
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


def _attempt_together(
    conn: sqlite3.Connection, batch: list[tuple[Op, asyncio.Future[Any]]]
) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]] | None:
    """The batch in one transaction with no savepoints: its outcomes if every operation
    succeeded and it committed; None, with everything rolled back, if one failed (then the
    batch runs again through `_attempt`: each operation is a function of the database alone,
    so running it again on the rolled-back database gives what the first run would have).
    An operation that needs its own savepoint (sqlite_batch.py's `ROLLBACK TO op`, when a
    batch of sends or deletes holds an uncommon item) fails here for want of it and runs
    again there. A transient failure is raised, for the batch to be retried."""
    outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
    with _transaction(conn):
        for op, fut in batch:
            try:
                result = op(conn)
            except Exception as exc:
                if is_transient(exc):
                    raise
                if conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                    conn.execute("ROLLBACK")
                if len(batch) == 1 and not isinstance(exc, NeedsIsolation):
                    # Alone, its rollback is its savepoint's: the outcome it would have had.
                    return [(fut, None, exc)]
                return None
            outcomes.append((fut, result, None))
    return outcomes


def _attempt(
    conn: sqlite3.Connection, batch: list[tuple[Op, asyncio.Future[Any]]]
) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]]:
    """The batch in one transaction, each operation in a savepoint of its own, so that one
    that fails rolls back alone. A transient failure of any operation fails the whole attempt,
    to be retried."""
    outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
    with _transaction(conn):
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
    return outcomes


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT; rolled back on any exception, or when the body returns
    early having rolled back itself (nothing is committed then: no transaction is open)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    if conn.in_transaction:
        conn.execute("COMMIT")


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


class SqliteStore(
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
    """The per-domain stores over the group-commit thread: every operation, read or write, is
    one call queued to the thread, run in a savepoint of the batch's transaction."""

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

    async def _read(self, op: OpFactory[T]) -> T:
        return await self._exec.call(lambda c: run_sqlite(c, op()))

    _write = _read  # one thread, one transaction per batch: reads and writes alike

    # The hot writes: a tick's sends, or deletes, in one call (sqlite_batch.py) ------------

    def store_messages(
        self, sends: Sequence[OutgoingMessage]
    ) -> asyncio.Future[list[StoredMessage | Exception]]:
        return self._exec.submit(lambda c: store_sends(c, sends, is_transient))

    def delete_many(self, acks: Sequence[Acknowledged]) -> asyncio.Future[list[int | Exception]]:
        return self._exec.submit(lambda c: delete_acks(c, acks, is_transient))

    async def ping(self) -> None:
        await self._exec.call(lambda c: c.execute("SELECT 1").fetchone())
