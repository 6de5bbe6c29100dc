"""What the processes sharing one profile read and write to work together.

docs/design.md, "Several processes on one profile": the outbox states (queued, failed, gone)
through which a relay hands its sends to the connection owner and reads back the outcome, and
the shown marks through which `porch recv` and `porch chat` agree on what was printed. A mixin
of LocalStore, kept apart so that store.py stays about one screenful per concern.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from porch.client.history import body_aad, extra_aad, open_extra
from porch.crypto.at_rest import Sealer
from porch.crypto.rich import Attachment, Quote

MAX_OUTBOX_LIST = 1000


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An outbox row as `porch outbox` lists it: queued (will be sent) or failed (never)."""

    client_id: str
    recipient: str
    content: bytes
    created: int
    state: str
    error_code: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A received text message with its row id, for "show what no command has shown yet"."""

    row: int
    peer: str
    client_id: str
    sender_device: int
    ts: int
    server_ts: int
    text: str
    status: str = "received"  # or a line the client wrote itself: "notice", "undecryptable"
    author: str | None = None  # who wrote it, in a group conversation (peer "g:<id>")
    outgoing: bool = False  # a sent copy: written on another of this account's devices
    attachments: tuple[Attachment, ...] = ()  # issue 8: pointers to download (porch recv)
    reply: Quote | None = None
    forwarded: bool = False
    reply_found: bool = False  # the quote was checked locally (porch.client.quotes)
    edited: bool = False
    deleted: bool = False  # deleted for everyone before it was shown


class SharedState:
    _db: sqlite3.Connection
    _sealer: Sealer

    # Provided by LocalStore, which this mixin is part of.
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    # Outbox states ---------------------------------------------------------------------------

    def last_seq(self) -> int:
        """The newest outbox row, so an owner notices rows other processes added."""
        return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0])

    def fail(self, client_id: str, code: str, message: str) -> str | None:
        """Keep a refused item as failed (never resent; docs/design.md); returns its recipient."""
        with self.transaction() as db:
            row = db.execute(
                "UPDATE outbox SET state = 'failed', error_code = ?, error = ?"
                " WHERE client_id = ? AND state = 'queued' RETURNING recipient",
                (code[:64], message[:500], client_id),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE messages SET status = 'failed'"
                " WHERE peer = ? AND outgoing = 1 AND client_id = ?",
                (row[0], client_id),
            )
        return str(row[0])

    def outbox_state(self, client_id: str) -> tuple[str, str | None, str | None] | None:
        """(state, error code, error) of an item, or None once it is gone (sent or cancelled)."""
        row = self._db.execute(
            "SELECT state, error_code, error FROM outbox WHERE client_id = ?", (client_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), row[1], row[2])

    def outbox_entries(self, limit: int = MAX_OUTBOX_LIST) -> list[OutboxEntry]:
        rows = self._db.execute(
            "SELECT client_id, recipient, content, created, state, error_code, error FROM outbox"
            " ORDER BY seq LIMIT ?",
            (min(limit, MAX_OUTBOX_LIST),),
        ).fetchall()
        return [
            OutboxEntry(c, r, self._sealer.open(body, aad=b"outbox:" + c.encode()), t, s, ec, e)
            for c, r, body, t, s, ec, e in rows
        ]

    def cancel(self, client_ids: list[str] | None) -> list[str]:
        """Remove queued or failed items (all of them with None); their messages show cancelled.

        Returns the ids removed. An item the connection owner already handed to the server may
        still arrive: cancelling is for what has not gone yet (docs/design.md)."""
        with self.transaction() as db:
            if client_ids is None:
                rows = db.execute("DELETE FROM outbox RETURNING client_id, recipient").fetchall()
            else:
                rows = []
                for cid in client_ids:
                    rows += db.execute(
                        "DELETE FROM outbox WHERE client_id = ? RETURNING client_id, recipient",
                        (cid,),
                    ).fetchall()
            db.executemany(
                "UPDATE messages SET status = 'cancelled'"
                " WHERE peer = ? AND outgoing = 1 AND client_id = ?",
                [(r, c) for c, r in rows],
            )
        return [str(c) for c, _ in rows]

    def retry(self, client_id: str) -> bool:
        """Queue a failed item again (`porch outbox retry`)."""
        with self.transaction() as db:
            # A new seq too: a running owner only reads rows after its cursor.
            row = db.execute(
                "UPDATE outbox SET state = 'queued', error_code = NULL, error = NULL,"
                " seq = (SELECT MAX(seq) + 1 FROM outbox)"
                " WHERE client_id = ? AND state = 'failed' RETURNING recipient",
                (client_id,),
            ).fetchone()
            if row is not None:
                db.execute(
                    "UPDATE messages SET status = 'pending'"
                    " WHERE peer = ? AND outgoing = 1 AND client_id = ?",
                    (row[0], client_id),
                )
        return row is not None

    # Shown marks -----------------------------------------------------------------------------

    def last_message_row(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0])

    def outgoing_status(self, client_id: str) -> tuple[str, int] | None:
        """(status, ts) of a message this profile sent, by its client id."""
        row = self._db.execute(
            "SELECT status, ts FROM messages WHERE outgoing = 1 AND client_id = ?", (client_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def unshown(self, after_row: int = 0, limit: int = 500) -> list[ReceivedMessage]:
        """Received messages (and sent copies from one's other devices, spec D) no command
        has shown yet, oldest first."""
        rows = self._db.execute(
            "SELECT id, peer, client_id, sender_device, ts, server_ts, body, status, outgoing,"
            " author, extra, edited, deleted FROM messages WHERE shown = 0 AND id > ?"
            " ORDER BY id LIMIT ?",
            (after_row, limit),
        ).fetchall()
        out = []
        for r in rows:
            row, peer, cid, dev, ts, server_ts, body, status, outgoing, author, blob = r[:11]
            edited, deleted = r[11:]
            aad = body_aad(peer, outgoing, cid, author)
            text = self._sealer.open(body, aad=aad).decode("utf-8")
            extra = open_extra(self._sealer, blob, extra_aad(peer, outgoing, cid, author))
            out.append(
                ReceivedMessage(
                    row,
                    peer,
                    cid,
                    dev,
                    ts,
                    server_ts,
                    text,
                    status,
                    author or None,
                    bool(outgoing),
                    extra.attachments,
                    extra.reply,
                    extra.forwarded,
                    edited=bool(edited),
                    deleted=bool(deleted),
                )
            )
        return out

    def mark_shown(self, rows: list[int] | None = None, *, peer: str | None = None) -> int:
        """Mark messages shown: these rows, or everything received from peer."""
        if peer is not None:
            cur = self._db.execute(
                "UPDATE messages SET shown = 1 WHERE peer = ? AND shown = 0",
                (peer,),
            )
            return cur.rowcount
        with self.transaction() as db:
            changed = 0
            for row in rows or []:
                changed += db.execute(
                    "UPDATE messages SET shown = 1 WHERE id = ? AND shown = 0", (row,)
                ).rowcount
        return changed
