"""The outbox queue: what this profile's devices still have to send, durable before it goes.

Rows are added by whoever writes a message (any process on the profile) and read in order by
the connection owner's outbox (porch.client.core.outbox); their states (queued, failed, paused)
are porch.client.shared's and porch.client.verified's. A mixin of LocalStore, like those.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from porch.crypto.at_rest import Sealer
from porch.protocol.fields import MAX_TTL_SECONDS


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One queued content, unsealed, as the connection owner's outbox sends it."""

    seq: int
    client_id: str
    recipient: str
    content: bytes  # encoded content, unsealed
    ephemeral: bool
    ttl: int | None = None  # seconds from `created` (ms) the message may take to arrive
    created: int = 0

    def ttl_left(self, now: int) -> int | None:
        """The seconds the server may still keep this message: its ttl less the time it waited
        here, rounded up (and never above the ttl, should the clock go back); 0 once it has run
        out; None without a ttl (spec §7)."""
        if self.ttl is None:
            return None
        left_ms = self.created + self.ttl * 1000 - now
        return min(self.ttl, max(0, -(-left_ms // 1000)))


class OutboxQueue:
    _db: sqlite3.Connection
    _sealer: Sealer

    def enqueue(
        self,
        client_id: str,
        recipient: str,
        content: bytes,
        ephemeral: bool,
        now: int,
        ttl: int | None = None,
    ) -> None:
        """ttl: seconds (1..MAX_TTL_SECONDS) from now after which the message is not worth
        delivering (a disappearing message's timer): the server drops it then, and the outbox
        does not send it once it has passed (spec §7)."""
        if ttl is not None and not 1 <= ttl <= MAX_TTL_SECONDS:
            raise ValueError(f"ttl must be 1..{MAX_TTL_SECONDS} seconds")
        sealed = self._sealer.seal(content, aad=b"outbox:" + client_id.encode())
        self._db.execute(
            "INSERT INTO outbox (client_id, recipient, content, ephemeral, created, ttl)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (client_id, recipient, sealed, int(ephemeral), now, ttl),
        )

    def pending(self, after_seq: int, limit: int) -> list[OutboxItem]:
        rows = self._db.execute(
            "SELECT seq, client_id, recipient, content, ephemeral, ttl, created FROM outbox"
            " WHERE seq > ? AND state = 'queued' ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [
            OutboxItem(s, c, r, self._sealer.open(b, aad=b"outbox:" + c.encode()), bool(e), t, n)
            for s, c, r, b, e, t, n in rows
        ]

    def outbox_size(self) -> int:
        """Items still to send (failed ones never are)."""
        row = self._db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'queued'").fetchone()
        return int(row[0])

    def dequeue(self, client_id: str) -> str | None:
        """Remove an acknowledged (or abandoned) item; returns its recipient."""
        row = self._db.execute(
            "DELETE FROM outbox WHERE client_id = ? RETURNING recipient", (client_id,)
        ).fetchone()
        return None if row is None else str(row[0])
