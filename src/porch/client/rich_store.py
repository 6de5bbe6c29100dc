"""Replies, reactions, edits, deletes, timers and downloads in the local store (a part of
LocalStore, store.py; issue 8 spec §4).

The rules (who may edit, the windows) are the core's (porch.client.core.rich); this module
only stores what the core decided. Reactions and the edit history are content: the emoji and
earlier bodies are sealed with the profile key like message bodies, bound to their row.
Expiry times, timers and which files were downloaded for which message are plain, like
message timestamps (docs/security.md, "Client store").
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from porch.client.group_ticks import forget_group_text
from porch.client.history import (
    MAX_EDITS,
    HistoryMessage,
    MessageExtra,
    body_aad,
    extra_aad,
    open_extra,
    seal_extra,
)
from porch.crypto.at_rest import Sealer

log = logging.getLogger("porch.client")

# Where a downloaded attachment's plaintext lives (spec §4: helper C writes the rows; this
# exact statement is shared with it).
DOWNLOADS_TABLE = (
    "CREATE TABLE IF NOT EXISTS downloads (media_id TEXT PRIMARY KEY, path TEXT NOT NULL,"
    " peer TEXT NOT NULL, client_id TEXT NOT NULL, created INTEGER NOT NULL)"
)

# Appended to store.MIGRATIONS. One reaction per reactor per message (a removal is kept as an
# empty emoji with its ts, so an older reaction arriving late does not come back); one timer
# per 1:1 conversation (a group's lives in its sealed state).
RICH_MIGRATION = [
    "ALTER TABLE messages ADD COLUMN extra BLOB",
    "ALTER TABLE messages ADD COLUMN expires_at INTEGER",
    "ALTER TABLE messages ADD COLUMN edited INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX IF NOT EXISTS messages_expiry ON messages (expires_at)"
    " WHERE expires_at IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS reactions (
        message INTEGER NOT NULL, reactor TEXT NOT NULL, emoji BLOB NOT NULL,
        ts INTEGER NOT NULL, PRIMARY KEY (message, reactor))""",
    """CREATE TABLE IF NOT EXISTS timers (
        peer TEXT PRIMARY KEY, seconds INTEGER NOT NULL, ts INTEGER NOT NULL)""",
    DOWNLOADS_TABLE,
]

# How many expired messages one sweep removes; the next sweep (30 s later) takes the rest.
EXPIRE_BATCH = 500

_COLUMNS = (
    "id, peer, client_id, outgoing, sender_device, ts, body, status, author, extra,"
    " expires_at, edited, deleted, server_ts"
)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message row, found for an action on it (react, edit, delete)."""

    row: int
    message: HistoryMessage
    extra: MessageExtra
    # When the server stored it (0 for one's own sends, whose ``ts`` the server's ack set):
    # the edit and delete window counts from here, not from the sender's chosen ts (M2-4).
    server_ts: int = 0

    @property
    def stored_at(self) -> int:
        return self.server_ts or self.message.ts


def row_author(peer: str, author: str, me: str) -> tuple[int, str] | None:
    """(outgoing, author column) of the row of a message ``author`` wrote in ``peer``'s
    conversation, or None when no such row can exist there (a 1:1 message is by one of the
    two sides; 1:1 rows leave the author column empty)."""
    if peer.startswith("g:"):
        return int(author == me), author
    if author == me:
        return 1, ""
    return (0, "") if author == peer else None


def _reaction_aad(row: int, reactor: str) -> bytes:
    return f"reaction:{row}:{reactor}".encode()


class RichStore:
    _db: sqlite3.Connection
    _sealer: Sealer
    # Provided by LocalStore, which this mixin is part of.
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    # Reading ---------------------------------------------------------------------------------

    def _message(self, row: tuple[Any, ...]) -> StoredMessage:
        rid, peer, cid, outgoing, dev, ts, body, status, author, blob, expires, edited = row[:12]
        deleted, server_ts = row[12:]
        text = self._sealer.open(body, aad=body_aad(peer, outgoing, cid, author)).decode("utf-8")
        extra = open_extra(self._sealer, blob, extra_aad(peer, outgoing, cid, author))
        message = HistoryMessage(
            peer,
            cid,
            bool(outgoing),
            dev,
            ts,
            text,
            status,
            author or None,
            attachments=extra.attachments,
            reply=extra.reply,
            forwarded=extra.forwarded,
            edited=bool(edited),
            deleted=bool(deleted),
            expires_at=expires,
            edits=extra.edits,
        )
        return StoredMessage(rid, message, extra, server_ts)

    def _reactions(self, rows: list[int]) -> dict[int, tuple[tuple[str, str], ...]]:
        out: dict[int, list[tuple[str, str]]] = {}
        for start in range(0, len(rows), 500):  # SQLite's bound-parameter limit
            chunk = rows[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found = self._db.execute(
                f"SELECT message, reactor, emoji FROM reactions WHERE message IN ({marks})"
                " ORDER BY ts, reactor",
                chunk,
            ).fetchall()
            for message, reactor, sealed in found:
                emoji = self._sealer.open(sealed, aad=_reaction_aad(message, reactor)).decode()
                if emoji:  # an empty emoji is a removal, kept for its ts
                    out.setdefault(message, []).append((reactor, emoji))
        return {k: tuple(v) for k, v in out.items()}

    def history(self, peer: str, limit: int = 200) -> list[HistoryMessage]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE peer = ? ORDER BY id DESC LIMIT ?",
            (peer, limit),
        ).fetchall()
        found = [self._message(r) for r in reversed(rows)]
        reactions = self._reactions([m.row for m in found])
        return [
            _with_reactions(m.message, reactions[m.row]) if m.row in reactions else m.message
            for m in found
        ]

    def find_message(
        self,
        peer: str,
        author: str,
        client_id: str,
        me: str,
        db: sqlite3.Connection | None = None,
    ) -> StoredMessage | None:
        """The message ``author`` wrote with ``client_id`` in ``peer``'s conversation."""
        where = row_author(peer, author, me)
        if where is None:
            return None
        row = (
            (db or self._db)
            .execute(
                f"SELECT {_COLUMNS} FROM messages"
                " WHERE peer = ? AND outgoing = ? AND author = ? AND client_id = ?",
                (peer, where[0], where[1], client_id),
            )
            .fetchone()
        )
        if row is None:
            return None
        found = self._message(row)
        reactions = self._reactions([found.row]).get(found.row, ())
        message = _with_reactions(found.message, reactions)
        return StoredMessage(found.row, message, found.extra, found.server_ts)

    def find_by_id(self, peer: str, client_id: str) -> StoredMessage | None:
        """The newest message with ``client_id`` in ``peer``'s conversation, whoever wrote it
        (client ids are random: a clash needs a sender that chose it)."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE peer = ? AND client_id = ?"
            " ORDER BY id DESC LIMIT 1",
            (peer, client_id),
        ).fetchone()
        return None if row is None else self._message(row)

    def find_outgoing(self, peer: str, client_id: str | None, ts: int) -> HistoryMessage | None:
        """A message sent to peer, by client id if given, else by its server timestamp (which
        replaced the local one when the server acknowledged it); with its extras (a resend
        carries them, porch.client.retry)."""
        query = f"SELECT {_COLUMNS} FROM messages WHERE peer = ? AND outgoing = 1 AND "
        if client_id is not None:
            row = self._db.execute(query + "client_id = ?", (peer, client_id)).fetchone()
        else:
            row = self._db.execute(query + "ts = ? ORDER BY id DESC LIMIT 1", (peer, ts)).fetchone()
        return None if row is None else self._message(row).message

    # Reactions -------------------------------------------------------------------------------

    def set_reaction(
        self, row: int, reactor: str, emoji: str, ts: int, db: sqlite3.Connection
    ) -> bool:
        """Replace ``reactor``'s reaction to message ``row`` ("" removes it) unless a newer one
        is stored; True when it changed."""
        current = db.execute(
            "SELECT ts, emoji FROM reactions WHERE message = ? AND reactor = ?", (row, reactor)
        ).fetchone()
        aad = _reaction_aad(row, reactor)
        if current is not None:
            if current[0] > ts:
                return False
            if self._sealer.open(current[1], aad=aad).decode() == emoji:
                return False
        db.execute(
            "INSERT OR REPLACE INTO reactions (message, reactor, emoji, ts) VALUES (?, ?, ?, ?)",
            (row, reactor, self._sealer.seal(emoji.encode(), aad=aad), ts),
        )
        return True

    # Edits and deletes -----------------------------------------------------------------------

    def apply_edit(self, found: StoredMessage, body: str, ts: int, db: sqlite3.Connection) -> bool:
        """Make ``body`` (written at ``ts``) a version of the message: the current one when it
        is the newest, an earlier one otherwise (edits may arrive out of order). False for a
        deleted message, a version already known, or past MAX_EDITS."""
        m, extra = found.message, found.extra
        current_ts = m.ts if extra.body_ts is None else extra.body_ts
        versions = [*extra.edits, (current_ts, m.text)]
        if m.deleted or (ts, body) in versions or len(extra.edits) >= MAX_EDITS:
            return False
        versions = sorted([*versions, (ts, body)], key=lambda v: v[0])
        latest_ts, latest = versions[-1]
        new_extra = MessageExtra(
            extra.attachments, extra.reply, extra.forwarded, tuple(versions[:-1]), latest_ts
        )
        self._rewrite(found, latest, new_extra, db)
        db.execute("UPDATE messages SET edited = 1 WHERE id = ?", (found.row,))
        return True

    def mark_deleted(self, found: StoredMessage, db: sqlite3.Connection) -> bool:
        """Replace a message by the "deleted" marker: its body, attachments, edit history and
        reactions go, and the files downloaded for it are removed. False if it already was."""
        if found.message.deleted:
            return False
        self._rewrite(found, "", None, db)
        db.execute("UPDATE messages SET deleted = 1, edited = 0 WHERE id = ?", (found.row,))
        db.execute("DELETE FROM reactions WHERE message = ?", (found.row,))
        self._purge_downloads(found, db)
        if found.message.outgoing:  # rows are per own text; another author may reuse its id
            forget_group_text(db, found.message.peer, found.message.client_id)
        return True

    def _rewrite(
        self, found: StoredMessage, body: str, extra: MessageExtra | None, db: sqlite3.Connection
    ) -> None:
        m = found.message
        key = (m.peer, m.outgoing, m.client_id, m.author)
        db.execute(
            "UPDATE messages SET body = ?, extra = ? WHERE id = ?",
            (
                self._sealer.seal(body.encode("utf-8"), aad=body_aad(*key)),
                seal_extra(self._sealer, extra, extra_aad(*key)),
                found.row,
            ),
        )

    def _purge_downloads(self, found: StoredMessage, db: sqlite3.Connection) -> None:
        # Only the files of this message's own pointers: a group member who reuses another's
        # client id for a message of his own cannot make a delete remove that one's files.
        media = [a.id for a in found.message.attachments]
        for media_id in media:
            row = db.execute(
                "DELETE FROM downloads WHERE media_id = ? AND peer = ? AND client_id = ?"
                " RETURNING path",
                (media_id, found.message.peer, found.message.client_id),
            ).fetchone()
            if row is not None:
                # Unlinked inside the transaction: were it rolled back, the file of a message
                # that was being deleted anyway is gone a moment early, nothing worse.
                _unlink(Path(row[0]))

    # Timers ----------------------------------------------------------------------------------

    def set_timer(self, peer: str, seconds: int, ts: int, db: sqlite3.Connection) -> bool:
        """The 1:1 conversation's disappearing timer (0 = off), unless a newer one is stored;
        True when it changed."""
        current = db.execute("SELECT seconds, ts FROM timers WHERE peer = ?", (peer,)).fetchone()
        if current is not None and (current[1] > ts or current[0] == seconds):
            return False
        db.execute(
            "INSERT OR REPLACE INTO timers (peer, seconds, ts) VALUES (?, ?, ?)",
            (peer, seconds, ts),
        )
        return True

    def timer(self, peer: str) -> int:
        row = self._db.execute("SELECT seconds FROM timers WHERE peer = ?", (peer,)).fetchone()
        return 0 if row is None else int(row[0])

    # Expiry ----------------------------------------------------------------------------------

    def expire(self, now: int) -> list[HistoryMessage]:
        """Remove the disappearing messages whose time has come, with their reactions and
        downloaded files; returns what was removed (at most EXPIRE_BATCH per call)."""
        with self.transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE expires_at IS NOT NULL"
                " AND expires_at <= ? ORDER BY expires_at LIMIT ?",
                (now, EXPIRE_BATCH),
            ).fetchall()
            gone = [self._message(r) for r in rows]
            for found in gone:
                self._purge_downloads(found, db)
                db.execute("DELETE FROM reactions WHERE message = ?", (found.row,))
                db.execute("DELETE FROM messages WHERE id = ?", (found.row,))
                if found.message.outgoing:
                    forget_group_text(db, found.message.peer, found.message.client_id)
        return [found.message for found in gone]


def _with_reactions(m: HistoryMessage, reactions: tuple[tuple[str, str], ...]) -> HistoryMessage:
    return replace(m, reactions=reactions) if reactions else m


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # the message is gone either way; say the file could not be
        log.warning("could not remove a downloaded attachment: %s", exc.strerror)
