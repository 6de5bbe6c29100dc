"""One SQL text per query, run by a small executor per dialect.

Each store operation is written once, as a generator that yields queries and receives their
results (sans-IO, like protocol/): it never sees a connection, so the same code runs on the
SQLite store thread (inside a savepoint of a group commit) and on an asyncpg connection
(inside a transaction). Query texts use `?` placeholders and three hooks, filled per dialect:

- `{for_update}`: PostgreSQL locks the row it read (`FOR UPDATE`); SQLite needs nothing, its
  single writer already serialises every transaction.
- `{skip_locked}`: the same for "take any free row" (`FOR UPDATE SKIP LOCKED`), so that
  concurrent one-time key claims on several nodes never take one key twice.
- `{row_id}`: the physical row id, `rowid` in SQLite and `ctid` in PostgreSQL.

Upserts (`ON CONFLICT ... DO NOTHING / DO UPDATE SET x = excluded.x`) and `RETURNING` are
spelt the same in both (SQLite 3.35 or later), except for a new row's id (new_id), which
SQLite reads from the cursor at half the cost. A unique-constraint failure reaches the
operation as UniqueViolation, whatever the driver's exception, so that an operation can turn
it into its own error (UsernameTaken, IdentityKeyTaken).
"""

from __future__ import annotations

import abc
import functools
import re
import sqlite3
from collections.abc import Callable, Generator, Sequence
from enum import Enum
from typing import Any, NamedTuple, TypeVar

import asyncpg

T = TypeVar("T")


class Mode(Enum):
    ROWS = "rows"  # every row
    ROW = "row"  # the first row, or None
    VALUE = "value"  # the first column of the first row, or None
    COUNT = "count"  # run it; how many rows it changed
    MANY = "many"  # run it once per argument tuple; SQLite counts the rows, asyncpg None
    NEW_ID = "new_id"  # run an INSERT; the id its table gave the new row


class Query(NamedTuple):
    # A tuple, not a frozen dataclass: built once per statement, on the hot path of every
    # send, where a frozen dataclass's __init__ costs several times as much.
    sql: str
    args: tuple[Any, ...] | Sequence[tuple[Any, ...]]
    mode: Mode


# An operation: yields queries, is sent each one's result, returns the operation's result.
Op = Generator[Query, Any, T]
OpFactory = Callable[[], Op[T]]


def rows(sql: str, *args: Any) -> Query:
    return Query(sql, args, Mode.ROWS)


def row(sql: str, *args: Any) -> Query:
    return Query(sql, args, Mode.ROW)


def value(sql: str, *args: Any) -> Query:
    return Query(sql, args, Mode.VALUE)


def count(sql: str, *args: Any) -> Query:
    return Query(sql, args, Mode.COUNT)


def many(sql: str, arg_rows: Sequence[tuple[Any, ...]]) -> Query:
    return Query(sql, arg_rows, Mode.MANY)


def new_id(sql: str, *args: Any) -> Query:
    """An INSERT into a table whose key is `id`, answered with the new row's id: the cursor's
    lastrowid in SQLite (RETURNING costs it twice the time of the insert), `RETURNING id` in
    PostgreSQL."""
    return Query(sql, args, Mode.NEW_ID)


class UniqueViolation(Exception):
    """A unique index or primary key refused a write (thrown into the operation)."""


SQLITE_HOOKS = {"for_update": "", "skip_locked": "", "row_id": "rowid"}
POSTGRES_HOOKS = {
    "for_update": " FOR UPDATE",
    "skip_locked": " FOR UPDATE SKIP LOCKED",
    "row_id": "ctid",
}
_PLACEHOLDER = re.compile(r"\?")


_sqlite_texts: dict[str, str] = {}


def sqlite_text(sql: str) -> str:
    text = _sqlite_texts.get(sql)  # a dict lookup: cheaper than functools.cache's wrapper
    if text is None:
        text = _sqlite_texts[sql] = sql.format_map(SQLITE_HOOKS)
    return text


@functools.cache
def postgres_text(sql: str) -> str:
    numbers = iter(range(1, 1000))
    return _PLACEHOLDER.sub(lambda _: f"${next(numbers)}", sql.format_map(POSTGRES_HOOKS))


class SqlDomain(abc.ABC):
    """Base of the per-domain stores (accounts.py, keys.py, ...): they run operations through
    the two methods every backend provides. Reads may skip the transaction a write needs. A
    domain's batched writes, where it has any, are abstract in the domain (messages.py) and
    each backend's own."""

    @abc.abstractmethod
    async def _read(self, op: OpFactory[T]) -> T: ...

    @abc.abstractmethod
    async def _write(self, op: OpFactory[T]) -> T: ...


# SQLite ------------------------------------------------------------------------------------


def run_sqlite(conn: sqlite3.Connection, op: Op[T]) -> T:
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            query = op.send(result) if error is None else op.throw(error)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        error = None
        try:
            result = _sqlite_query(conn, query)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE constraint failed" not in str(exc):
                raise
            error = UniqueViolation(str(exc))


def _sqlite_query(conn: sqlite3.Connection, q: Query) -> Any:
    sql, args, mode = q
    text = _sqlite_texts.get(sql) or sqlite_text(sql)
    if mode is Mode.MANY:
        return conn.executemany(text, args).rowcount
    cur = conn.execute(text, args)
    if mode is Mode.COUNT:
        return cur.rowcount
    if mode is Mode.NEW_ID:
        return cur.lastrowid
    if mode is Mode.ROWS:
        return cur.fetchall()
    if mode is Mode.ROW:
        return cur.fetchone()
    first = cur.fetchone()  # Mode.VALUE
    return None if first is None else first[0]


# PostgreSQL --------------------------------------------------------------------------------


async def run_asyncpg(conn: asyncpg.Connection, op: Op[T]) -> T:
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            query = op.send(result) if error is None else op.throw(error)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        error = None
        try:
            result = await _asyncpg_query(conn, query)
        except asyncpg.UniqueViolationError as exc:
            error = UniqueViolation(str(exc))


async def _asyncpg_query(conn: asyncpg.Connection, q: Query) -> Any:
    sql = postgres_text(q.sql)
    if q.mode is Mode.MANY:
        await conn.executemany(sql, q.args)
        return None
    if q.mode is Mode.ROWS:
        return await conn.fetch(sql, *q.args)
    if q.mode is Mode.ROW:
        return await conn.fetchrow(sql, *q.args)
    if q.mode is Mode.VALUE:
        return await conn.fetchval(sql, *q.args)
    if q.mode is Mode.NEW_ID:
        return await conn.fetchval(postgres_text(q.sql + " RETURNING id"), *q.args)
    return rowcount(await conn.execute(sql, *q.args))


def rowcount(status: str) -> int:
    """The row count at the end of a PostgreSQL command status ("DELETE 3")."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0
