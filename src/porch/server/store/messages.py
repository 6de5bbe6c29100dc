"""Device queues, send idempotency and expiry: one text per query (sql.py).

The two hot writes, a tick's sends (store_messages; store_message is a batch of one) and a
tick's deletes (delete_many), are each backend's own: set-based statements in one store call,
SQLite's in sqlite_batch.py, PostgreSQL's in its batch writer (pg_writer.py). Both fall back
to the operations here, one send (store_one) or one device's ack (delete_one) at a time.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import Sequence
from typing import Any

from porch.server.domain import Envelope
from porch.server.store import payloads
from porch.server.store.base import (
    Acknowledged,
    OutgoingDestination,
    OutgoingMessage,
    SharedPayload,
    StoredMessage,
    SweepResult,
)
from porch.server.store.rows import envelope_from
from porch.server.store.sql import Op, SqlDomain, count, new_id, rows, value

SENT_ADD = (
    "INSERT INTO sent_messages (sender_account, sender_device, client_id, ts, expires)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
SENT_TS = (
    "SELECT ts FROM sent_messages WHERE sender_account = ? AND sender_device = ? AND client_id = ?"
)
ENVELOPE_ADD = (
    "INSERT INTO envelopes (account_id, device_id, sender_account, sender_device, ts, kind,"
    " body, expires, payload_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# With the id taken ahead (SQLite's batch of sends, sqlite_batch.py).
ENVELOPE_ADD_WITH_ID = (
    "INSERT INTO envelopes (id, account_id, device_id, sender_account, sender_device, ts, kind,"
    " body, expires, payload_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A shared envelope's kind and body are its payload's (spec A: the device sees no difference).
# Its expiry comes last (EXPIRES_AT), for fetch_envelopes to drop what expired since the sweep.
QUEUE = (
    "SELECT e.id, e.account_id, e.device_id, e.sender_account, e.sender_device, e.ts,"
    " COALESCE(p.kind, e.kind), COALESCE(p.body, e.body), e.expires"
    " FROM envelopes e LEFT JOIN payloads p ON p.id = e.payload_id"
    " WHERE e.account_id = ? AND e.device_id = ? AND e.id > ? ORDER BY e.id LIMIT ?"
)
# Scoped to the device, so a device can only ever delete its own envelopes. One statement
# per chunk of ids (an IN list), which hands back the payloads it released: one pass over the
# rows where an executemany, and a query for the payloads first, made two (issue 10).
ENVELOPES_DELETE = (
    "DELETE FROM envelopes WHERE account_id = ? AND device_id = ? AND id IN ({ids})"
    " RETURNING payload_id"
)
# Ids per statement: below SQLite's 999 bound variables (before 3.32). A chunk's list is padded
# to a power of two by repeating its last id, so that a handful of texts serve every size and
# stay in sqlite3's statement cache.
DELETE_CHUNK = 512
# One id, for sqlite_batch.py's executemany over a whole tick's acks.
ENVELOPE_DELETE = "DELETE FROM envelopes WHERE id = ? AND account_id = ? AND device_id = ?"
EXPIRES_AT = 8  # QUEUE's column of the envelope's expiry
QUEUE_DEPTH = "SELECT COUNT(*) FROM envelopes"
# Envelopes first, so that the payloads they pointed at are orphans when payloads.sweep runs.
EXPIRED = (
    "DELETE FROM envelopes WHERE expires <= ?",
    "DELETE FROM sent_messages WHERE expires <= ?",
    "DELETE FROM registration_sessions WHERE expires <= ?",
    "DELETE FROM registration_numbers WHERE expires <= ?",
)


class SqlMessageStore(SqlDomain):
    async def store_message(
        self,
        sender_account: str,
        sender_device: int,
        client_id: str,
        destinations: Sequence[OutgoingDestination],
        shared: SharedPayload | None,
        now: int,
        expires: int,
        envelope_expires: int | None = None,
    ) -> StoredMessage:
        send = OutgoingMessage(
            sender_account,
            sender_device,
            client_id,
            destinations,
            shared,
            now,
            expires,
            envelope_expires,
        )
        [outcome] = await self.store_messages([send])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @abc.abstractmethod
    def store_messages(
        self, sends: Sequence[OutgoingMessage]
    ) -> asyncio.Future[list[StoredMessage | Exception]]:
        """Several sends in one store call, in order, each failing alone."""

    async def delete_envelopes(self, account_id: str, device_id: int, ids: Sequence[int]) -> int:
        [outcome] = await self.delete_many([Acknowledged(account_id, device_id, ids)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @abc.abstractmethod
    def delete_many(self, acks: Sequence[Acknowledged]) -> asyncio.Future[list[int | Exception]]:
        """Several devices' acknowledged envelopes deleted in one store call, each failing
        alone; how many each deleted."""

    async def fetch_envelopes(
        self,
        account_id: str,
        device_id: int,
        limit: int,
        now: int | None = None,
        after: int = 0,
    ) -> list[Envelope]:
        def op() -> Op[list[Any]]:
            return list((yield rows(QUEUE, account_id, device_id, after, limit)))

        while True:
            page = await self._read(op)
            expired = [] if now is None else [r[0] for r in page if r[EXPIRES_AT] <= now]
            if not expired:
                return [envelope_from(r) for r in page]
            # Expired since the last sweep (a ttl send, spec §7): deleted now, through the
            # ack path (PostgreSQL: its batch writer), then the page is read again, so that it
            # is full whenever the queue holds more. Each round removes what it met, so the
            # rounds end, at the latest, when the device's queue does.
            await self.delete_envelopes(account_id, device_id, expired)

    async def queue_depth(self) -> int:
        def op() -> Op[int]:
            return int((yield value(QUEUE_DEPTH)))

        return await self._read(op)

    async def sweep(self, now: int) -> SweepResult:
        def op() -> Op[SweepResult]:
            counts = []
            for sql in EXPIRED:
                counts.append((yield count(sql, now)))
            envelopes, sent, sessions, numbers = counts
            dropped = yield from payloads.sweep(now)
            return SweepResult(envelopes, sent, sessions + numbers, dropped)

        return await self._write(op)


def deadline_of(expires: int, envelope_expires: int | None) -> int | None:
    """A ttl send's envelope expiry, never past the retention's `expires`; None without one."""
    return None if envelope_expires is None else min(expires, envelope_expires)


def delete_one(ack: Acknowledged, released: set[int] | None = None) -> Op[int]:
    """Deletes the device's envelopes among ack.ids. The payloads they pointed at go into
    released, for one payloads.drop_orphans over a whole batch (an operation that fails and
    runs again, or is rolled back, leaves a few more there: drop_orphans keeps any payload
    still pointed at); without it they are dropped here."""
    own = released is None
    released = set() if released is None else released
    account_id, device_id = ack.account_id, ack.device_id
    ids = sorted(set(ack.ids))
    deleted = 0
    for start in range(0, len(ids), DELETE_CHUNK):
        chunk = ids[start : start + DELETE_CHUNK]
        found = yield rows(delete_text(len(chunk)), account_id, device_id, *padded(chunk))
        deleted += len(found)
        released.update(r[0] for r in found if r[0] is not None)
    if own:
        yield from payloads.drop_orphans(released)
    return deleted


@functools.cache
def delete_text(n: int) -> str:
    """ENVELOPES_DELETE for a chunk of n ids (padded to a power of two, at most DELETE_CHUNK)."""
    return ENVELOPES_DELETE.replace("{ids}", ", ".join("?" * _padded_size(n)))


def _padded_size(n: int) -> int:
    return min(DELETE_CHUNK, 1 << max(0, n - 1).bit_length())


def padded(chunk: list[int]) -> list[int]:
    """chunk, its last id repeated up to the padded size (a repeated id deletes nothing more)."""
    return chunk + [chunk[-1]] * (_padded_size(len(chunk)) - len(chunk))


def store_one(send: OutgoingMessage) -> Op[StoredMessage]:
    sender_account, sender_device, client_id = (
        send.sender_account,
        send.sender_device,
        send.client_id,
    )
    destinations, shared, now, expires = send.destinations, send.shared, send.now, send.expires
    envelope_expires = send.envelope_expires
    if not (yield count(SENT_ADD, sender_account, sender_device, client_id, now, expires)):
        # A resend: acknowledged with the first copy's timestamp, stored nowhere.
        ts = yield value(SENT_TS, sender_account, sender_device, client_id)
        return StoredMessage(int(ts), (), True)
    deadline = deadline_of(expires, envelope_expires)
    until = expires if deadline is None else deadline
    payload_id = None
    if shared is not None:
        payload_id = yield new_id(payloads.PAYLOAD_ADD, shared.kind, shared.body, until)
    stored = []
    for d in destinations:
        for c in d.copies:
            if c.body is None or c.kind is None:
                if shared is None or payload_id is None:
                    raise ValueError("a copy without a body needs the shared payload")
                kind, body, points = shared.kind, shared.body, payload_id
                stored_body = ""  # the payload holds it, once
            else:
                kind, body, points, stored_body = c.kind, c.body, None, c.body
            envelope_id = yield new_id(
                ENVELOPE_ADD,
                d.account_id,
                c.device_id,
                sender_account,
                sender_device,
                now,
                kind,
                stored_body,
                until,
                points,
            )
            stored.append(
                Envelope(
                    envelope_id,
                    d.account_id,
                    c.device_id,
                    sender_account,
                    sender_device,
                    now,
                    kind,
                    body,
                    expires=deadline,
                )
            )
    return StoredMessage(now, tuple(stored), False)
