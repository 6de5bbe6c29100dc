"""Device queues, send idempotency and expiry: one text per query (sql.py).

store_message and delete_envelopes run here one call per operation, which the SQLite store
thread group-commits; the PostgreSQL store replaces those two with its batch writer
(postgres.py), whose set-based statements are PostgreSQL's alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from porch.server.domain import Envelope
from porch.server.store.base import OutgoingCopy, StoredMessage, SweepResult
from porch.server.store.rows import ENVELOPE_COLS, envelope_from
from porch.server.store.sql import Op, SqlDomain, count, many, new_id, rows, value

SENT_ADD = (
    "INSERT INTO sent_messages (sender_account, sender_device, client_id, ts, expires)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
SENT_TS = (
    "SELECT ts FROM sent_messages WHERE sender_account = ? AND sender_device = ? AND client_id = ?"
)
ENVELOPE_ADD = (
    "INSERT INTO envelopes (account_id, device_id, sender_account, sender_device, ts, kind,"
    " body, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
QUEUE = (
    "SELECT " + ENVELOPE_COLS + " FROM envelopes WHERE account_id = ? AND device_id = ?"
    " ORDER BY id LIMIT ?"
)
# Scoped to the device, so a device can only ever delete its own envelopes.
ENVELOPE_DELETE = "DELETE FROM envelopes WHERE id = ? AND account_id = ? AND device_id = ?"
QUEUE_DEPTH = "SELECT COUNT(*) FROM envelopes"
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
        recipient: str,
        copies: Sequence[OutgoingCopy],
        now: int,
        expires: int,
    ) -> StoredMessage:
        return await self._write(
            lambda: store_one(
                sender_account, sender_device, client_id, recipient, copies, now, expires
            )
        )

    async def delete_envelopes(self, account_id: str, device_id: int, ids: Sequence[int]) -> int:
        def op() -> Op[int]:
            return int((yield many(ENVELOPE_DELETE, [(i, account_id, device_id) for i in ids])))

        return await self._write(op)

    async def fetch_envelopes(self, account_id: str, device_id: int, limit: int) -> list[Envelope]:
        def op() -> Op[list[Envelope]]:
            return [envelope_from(r) for r in (yield rows(QUEUE, account_id, device_id, limit))]

        return await self._read(op)

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
            return SweepResult(envelopes, sent, sessions + numbers)

        return await self._write(op)


def store_one(
    sender_account: str,
    sender_device: int,
    client_id: str,
    recipient: str,
    copies: Sequence[OutgoingCopy],
    now: int,
    expires: int,
) -> Op[StoredMessage]:
    if not (yield count(SENT_ADD, sender_account, sender_device, client_id, now, expires)):
        # A resend: acknowledged with the first copy's timestamp, stored nowhere.
        ts = yield value(SENT_TS, sender_account, sender_device, client_id)
        return StoredMessage(int(ts), (), True)
    stored = []
    for c in copies:
        envelope_id = yield new_id(
            ENVELOPE_ADD,
            recipient,
            c.device_id,
            sender_account,
            sender_device,
            now,
            c.kind,
            c.body,
            expires,
        )
        stored.append(
            Envelope(
                envelope_id,
                recipient,
                c.device_id,
                sender_account,
                sender_device,
                now,
                c.kind,
                c.body,
            )
        )
    return StoredMessage(now, tuple(stored), False)
