"""SQLite's hot writes: a tick's sends, and a tick's deletes, a few statements each (issue 10).

They run on the store thread inside the savepoint `_attempt` (sqlite.py) gave their call. A
batch of sends is one `executemany` per table, whatever its size, with the new rows' ids
taken ahead from the table's AUTOINCREMENT counter: the store thread is the only writer and
holds the write lock (BEGIN IMMEDIATE), so nothing else can take an id in between
(https://www.sqlite.org/autoinc.html: a new id is one more than the largest ever used, which
`sqlite_sequence` records). A batch of deletes is one `executemany` too, except a device's
ack that covers a whole stretch of its queue (a drain acknowledges in order: `_in_order`), which
is one range statement over the queue index. When something in a
batch is not the common case (a resend, an id the device does not hold, a send that fails),
the batch's writes are rolled back and each item runs again on its own, in a savepoint of its
own (`one_by_one`), so that it fails alone and is answered exactly as before.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

from porch.server.domain import Envelope
from porch.server.store import payloads
from porch.server.store.messages import (
    ENVELOPE_ADD_WITH_ID,
    ENVELOPE_DELETE,
    SENT_ADD,
    deadline_of,
    delete_one,
    store_one,
)
from porch.server.store.records import Acknowledged, OutgoingMessage, StoredMessage
from porch.server.store.sql import Op, run_sqlite

T = TypeVar("T")
Item = TypeVar("Item")
Transient = Callable[[BaseException], bool]

NEXT_ID = (
    "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0),"
    " COALESCE((SELECT MAX(id) FROM {table}), 0))"
)
# A device's in-order ack (docs/performance.md, "Drain (2026-12-02)"): the rows of its queue in
# the ack's id range are counted first, on the queue index alone, and deleted by range only if
# they are as many as the ack's distinct ids; what the delete returns is then checked against
# the ids. A range walks the queue index once where a delete per id seeks the table and its
# indexes from the root for each row: about 40% of a drain's deletes.
RANGE_COUNT = (
    "SELECT COUNT(*) FROM envelopes WHERE account_id = ? AND device_id = ? AND id BETWEEN ? AND ?"
)
RANGE_DELETE = (
    "DELETE FROM envelopes WHERE account_id = ? AND device_id = ? AND id BETWEEN ? AND ?"
    " RETURNING id, payload_id"
)
# Acks of fewer ids go to the executemany: two statements would cost more than they save.
RANGE_FROM = 8
PAYLOADS_OF_IDS = (
    "SELECT DISTINCT payload_id FROM envelopes WHERE id IN (SELECT value FROM json_each(?))"
    " AND payload_id IS NOT NULL"
)


class NeedsIsolation(Exception):
    """The batch ran without the call's savepoint (sqlite.py, `_attempt_together`) and this
    call needs it to fall back to one item at a time: run the batch again with savepoints."""


class _Uncommon(Exception):
    """The batch holds something the set-based path does not answer: run it one by one."""


def store_sends(
    conn: sqlite3.Connection, sends: Sequence[OutgoingMessage], transient: Transient
) -> list[StoredMessage | Exception]:
    return _batch_or_each(conn, sends, _store_all, store_one, transient)


def delete_acks(
    conn: sqlite3.Connection, acks: Sequence[Acknowledged], transient: Transient
) -> list[int | Exception]:
    return _batch_or_each(conn, acks, _delete_all, delete_one, transient)


def _batch_or_each(
    conn: sqlite3.Connection,
    items: Sequence[Item],
    together: Callable[[sqlite3.Connection, Sequence[Item]], list[T]],
    alone: Callable[[Item], Op[T]],
    transient: Transient,
) -> list[T | Exception]:
    """`together` for the whole batch; if it cannot or fails, the batch is rolled back to the
    call's savepoint and each item runs alone: savepoints cost only when needed."""
    try:
        return list(together(conn, items))
    except Exception as exc:
        if transient(exc):
            raise
    try:
        conn.execute("ROLLBACK TO op")
    except sqlite3.OperationalError as exc:  # run without savepoints (sqlite.py)
        raise NeedsIsolation from exc
    return one_by_one(conn, [functools.partial(alone, i) for i in items], transient)


def one_by_one(
    conn: sqlite3.Connection, ops: Sequence[Callable[[], Op[T]]], transient: Transient
) -> list[T | Exception]:
    """Each operation in a savepoint of its own: one that fails rolls back alone."""
    outcomes: list[T | Exception] = []
    for op in ops:
        conn.execute("SAVEPOINT one")
        try:
            outcomes.append(run_sqlite(conn, op()))
        except Exception as exc:
            conn.execute("ROLLBACK TO one")
            if transient(exc):
                raise
            outcomes.append(exc)
        conn.execute("RELEASE one")
    return outcomes


def _next_ids(conn: sqlite3.Connection, table: str, n: int) -> range:
    """The ids AUTOINCREMENT would give the next n rows of table (the single writer's)."""
    last = conn.execute(NEXT_ID.format(table=table), (table,)).fetchone()[0]
    return range(last + 1, last + 1 + n)


def _store_all(conn: sqlite3.Connection, sends: Sequence[OutgoingMessage]) -> list[StoredMessage]:
    keys = {(s.sender_account, s.sender_device, s.client_id) for s in sends}
    if len(keys) != len(sends):
        raise _Uncommon  # a resend within the batch
    inserted = conn.executemany(
        SENT_ADD,
        [(s.sender_account, s.sender_device, s.client_id, s.now, s.expires) for s in sends],
    ).rowcount
    if inserted != len(sends):
        raise _Uncommon  # a resend of a stored send: answered with its first timestamp
    shared_sends = [i for i, s in enumerate(sends) if s.shared is not None]
    payload_of: dict[int, int] = {}
    if shared_sends:
        payload_rows = []
        for pid, i in zip(
            _next_ids(conn, "payloads", len(shared_sends)), shared_sends, strict=True
        ):
            shared = sends[i].shared
            assert shared is not None
            payload_of[i] = pid
            payload_rows.append((pid, shared.kind, shared.body, _until(sends[i])))
        conn.executemany(payloads.PAYLOAD_ADD_WITH_ID, payload_rows)
    n = sum(len(d.copies) for s in sends for d in s.destinations)
    ids = iter(_next_ids(conn, "envelopes", n))
    rows = []
    results = []
    for i, s in enumerate(sends):
        deadline = deadline_of(s.expires, s.envelope_expires)
        until = s.expires if deadline is None else deadline
        sender, device, now, shared = s.sender_account, s.sender_device, s.now, s.shared
        stored = []
        for d in s.destinations:
            account = d.account_id
            for c in d.copies:
                envelope_id = next(ids)
                if c.body is None or c.kind is None:
                    if shared is None:
                        raise ValueError("a copy without a body needs the shared payload")
                    kind, body, points, kept = shared.kind, shared.body, payload_of[i], ""
                else:
                    kind, body, points, kept = c.kind, c.body, None, c.body
                row = (envelope_id, account, c.device_id, sender, device, now, kind, kept)
                rows.append((*row, until, points))
                stored.append(
                    Envelope(
                        envelope_id,
                        account,
                        c.device_id,
                        sender,
                        device,
                        now,
                        kind,
                        body,
                        expires=deadline,
                    )
                )
        results.append(StoredMessage(now, tuple(stored), False))
    conn.executemany(ENVELOPE_ADD_WITH_ID, rows)
    return results


def _until(s: OutgoingMessage) -> int:
    deadline = deadline_of(s.expires, s.envelope_expires)
    return s.expires if deadline is None else deadline


def _delete_all(conn: sqlite3.Connection, acks: Sequence[Acknowledged]) -> list[int]:
    released: list[int] = []
    rows: list[tuple[int, str, int]] = []
    for a in acks:
        if not _delete_range(conn, a, released):
            rows.extend((i, a.account_id, a.device_id) for i in a.ids)
    if len(set(rows)) != len(rows):
        raise _Uncommon  # an id twice: counted once, as delete_one does
    if rows:
        # The payloads the batch may release (an envelope's id is its table's key: no scope
        # needed to find them; drop_orphans deletes only those nothing points at any more).
        found = conn.execute(PAYLOADS_OF_IDS, (_json_ids(rows),)).fetchall()
        released.extend(r[0] for r in found)
        deleted = conn.executemany(ENVELOPE_DELETE, rows).rowcount
        if deleted != len(rows):
            raise _Uncommon  # an id the device does not hold (gone, or never its own)
    if released:
        run_sqlite(conn, payloads.drop_orphans(released))
    return [len(a.ids) for a in acks]


def _delete_range(conn: sqlite3.Connection, ack: Acknowledged, released: list[int]) -> bool:
    """The ack's envelopes deleted by one range over the device's queue, if its ids are in
    order (no repeats) and its queue holds nothing else between the first and the last;
    False, with nothing deleted, if not. The payloads the rows pointed at go into released."""
    ids = ack.ids
    if len(ids) < RANGE_FROM or not _in_order(ids):
        return False
    scope = (ack.account_id, ack.device_id, ids[0], ids[-1])
    if conn.execute(RANGE_COUNT, scope).fetchone()[0] != len(ids):
        return False  # a gap the device holds (not acknowledged), or ids it does not hold
    gone = conn.execute(RANGE_DELETE, scope).fetchall()
    wanted = set(ids)
    if len(gone) != len(ids) or not all(r[0] in wanted for r in gone):
        # As many rows as ids, but not those ids: some are not the device's, and others in
        # their place were deleted. The batch is rolled back and runs item by item.
        raise _Uncommon
    released.extend(r[1] for r in gone if r[1] is not None)
    return True


def _in_order(ids: Sequence[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(ids))


def _json_ids(rows: list[tuple[int, str, int]]) -> str:
    return "[" + ",".join(str(r[0]) for r in rows) + "]"
