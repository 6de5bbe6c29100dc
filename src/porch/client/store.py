"""The client's local store: one SQLite file in the profile directory.

Secrets and message bodies are sealed with the profile key (porch.crypto.at_rest); Olm pickles
are encrypted by vodozemac with a key derived from it. Each method is one transaction, so a
received message, the session state that decrypted it and the record that it was seen are
written together, before the server is told to delete it (ARCHITECTURE.md, "Message path").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from porch.client.contacts import Contacts, PeerDeviceRow
from porch.client.group_store import GROUP_SCHEMA, GroupStore
from porch.client.group_ticks import GROUP_TICKS_SCHEMA, GroupTicks
from porch.client.history import HistoryMessage, MessageExtra, body_aad, extra_aad, seal_extra
from porch.client.media_store import DOWNLOADS_MIGRATION
from porch.client.outbox_store import OutboxItem, OutboxQueue
from porch.client.rich_store import RICH_MIGRATION, RichStore
from porch.client.shared import SharedState
from porch.client.verified import VerifiedKeys
from porch.crypto.at_rest import Sealer

__all__ = [
    "Conversation",
    "HistoryMessage",
    "LocalStore",
    "OutboxItem",
    "PeerDeviceRow",
    "body_aad",
]

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS kv (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
    """CREATE TABLE IF NOT EXISTS sessions (
        account_id TEXT NOT NULL, device_id INTEGER NOT NULL, pickle TEXT NOT NULL,
        PRIMARY KEY (account_id, device_id))""",
    """CREATE TABLE IF NOT EXISTS contacts (
        account_id TEXT PRIMARY KEY, master_key TEXT, phone TEXT, username TEXT)""",
    """CREATE TABLE IF NOT EXISTS peer_devices (
        account_id TEXT NOT NULL, device_id INTEGER NOT NULL, registration_id INTEGER NOT NULL,
        curve25519 TEXT NOT NULL, ed25519 TEXT NOT NULL, PRIMARY KEY (account_id, device_id))""",
    """CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL UNIQUE,
        recipient TEXT NOT NULL, content BLOB NOT NULL, ephemeral INTEGER NOT NULL,
        created INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL, client_id TEXT NOT NULL,
        outgoing INTEGER NOT NULL, sender_device INTEGER NOT NULL, ts INTEGER NOT NULL,
        body BLOB NOT NULL, status TEXT NOT NULL, UNIQUE (peer, outgoing, client_id))""",
    "CREATE INDEX IF NOT EXISTS messages_peer ON messages (peer, id)",
    # Keyed by the server's envelope id and timestamp: a restored or rebuilt server database
    # may reuse ids, never with the same store time.
    """CREATE TABLE IF NOT EXISTS seen_envelopes (
        id INTEGER NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (id, ts))""",
    # How often each sent message was resent on a retry request (porch.client.retry).
    """CREATE TABLE IF NOT EXISTS resends (
        peer TEXT NOT NULL, client_id TEXT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (peer, client_id))""",
]

# Schema changes after the first release, applied once each, in order; PRAGMA user_version
# counts how many ran. Received messages that existed before `shown` was added were printed
# (or could have been) by the process that received them: they start as shown (DEFAULT 1), and
# new rows say otherwise explicitly.
MIGRATIONS = [
    [
        "ALTER TABLE messages ADD COLUMN shown INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE messages ADD COLUMN server_ts INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX IF NOT EXISTS messages_unshown ON messages (shown, id)",
        "ALTER TABLE outbox ADD COLUMN state TEXT NOT NULL DEFAULT 'queued'",
        "ALTER TABLE outbox ADD COLUMN error_code TEXT",
        "ALTER TABLE outbox ADD COLUMN error TEXT",
        "ALTER TABLE contacts ADD COLUMN named INTEGER NOT NULL DEFAULT 0",
    ],
    # The master key whose safety number the user verified (porch.client.verified).
    ["ALTER TABLE contacts ADD COLUMN verified_key TEXT"],
    # The contact's signed device list last accepted: its version and device ids (spec C).
    [
        "ALTER TABLE contacts ADD COLUMN list_version INTEGER",
        "ALTER TABLE contacts ADD COLUMN list_devices TEXT",
    ],
    # Group conversations (peer "g:<group id>") hold messages of many authors, whose client
    # ids are only unique per author: the author joins the uniqueness ('' in 1:1 rows, so
    # that the constraint still holds there; SQLite cannot change a UNIQUE in place).
    [
        """CREATE TABLE messages_v4 (
            id INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL, client_id TEXT NOT NULL,
            outgoing INTEGER NOT NULL, sender_device INTEGER NOT NULL, ts INTEGER NOT NULL,
            body BLOB NOT NULL, status TEXT NOT NULL, shown INTEGER NOT NULL DEFAULT 1,
            server_ts INTEGER NOT NULL DEFAULT 0, author TEXT NOT NULL DEFAULT '',
            UNIQUE (peer, outgoing, author, client_id))""",
        "INSERT INTO messages_v4 (id, peer, client_id, outgoing, sender_device, ts, body,"
        " status, shown, server_ts) SELECT id, peer, client_id, outgoing, sender_device, ts,"
        " body, status, shown, server_ts FROM messages",
        "DROP TABLE messages",
        "ALTER TABLE messages_v4 RENAME TO messages",
        "CREATE INDEX IF NOT EXISTS messages_peer ON messages (peer, id)",
        "CREATE INDEX IF NOT EXISTS messages_unshown ON messages (shown, id)",
    ],
    # Issue 8: attachments, replies, reactions, edits, deletes, timers, downloads.
    RICH_MIGRATION,
    # A disappearing message's timer (seconds from `created`): the send frame's ttl (spec §7).
    ["ALTER TABLE outbox ADD COLUMN ttl INTEGER"],
    DOWNLOADS_MIGRATION,  # the pointer a saved attachment was verified against
]

# Several processes share client.db (docs/design.md, "Several processes on one profile"): a
# writer waits this long for another's transaction instead of failing with "database is locked".
BUSY_TIMEOUT_MS = 10_000

# "failed" and "cancelled" are final: an acknowledgement that races a cancel never turns a
# cancelled message back into a sent one on screen.
STATUS_ORDER = {
    "pending": 0,
    "sent": 1,
    "delivered": 2,
    "read": 3,
    "received": 0,
    "undecryptable": 0,  # a placeholder for a message that could not be decrypted
    "notice": 0,  # a line the client adds itself, e.g. "the safety number changed"
    "failed": 4,
    "cancelled": 4,
}


@dataclass(frozen=True, slots=True)
class Conversation:
    peer: str
    last_ts: int
    last_text: str
    unread: int


class LocalStore(
    OutboxQueue, Contacts, SharedState, VerifiedKeys, GroupStore, GroupTicks, RichStore
):
    def __init__(self, path: Path, sealer: Sealer) -> None:
        self._sealer = sealer
        self._db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=ON")
        with self.transaction() as db:  # two processes opening a new profile at once: one wins
            for statement in SCHEMA + GROUP_SCHEMA + GROUP_TICKS_SCHEMA:
                db.execute(statement)
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={len(MIGRATIONS)}")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def subkey(self, label: str) -> bytes:
        """A key derived from the profile key for ``label`` (Megolm pickles, say)."""
        return self._sealer.subkey(label)

    # Secrets and pickles ---------------------------------------------------------------------

    def put_secret(self, name: str, value: bytes) -> None:
        sealed = self._sealer.seal(value, aad=b"kv:" + name.encode())
        self._db.execute("INSERT OR REPLACE INTO kv (name, value) VALUES (?, ?)", (name, sealed))

    def get_secret(self, name: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._sealer.open(row[0], aad=b"kv:" + name.encode())

    def put_pickle(self, name: str, pickle: str, db: sqlite3.Connection | None = None) -> None:
        (db or self._db).execute(
            "INSERT OR REPLACE INTO kv (name, value) VALUES (?, ?)", (name, pickle.encode())
        )

    def get_pickle(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0]).decode()

    def save_sessions(
        self, pickles: dict[tuple[str, int], str], db: sqlite3.Connection | None = None
    ) -> None:
        (db or self._db).executemany(
            "INSERT OR REPLACE INTO sessions (account_id, device_id, pickle) VALUES (?, ?, ?)",
            [(a, d, p) for (a, d), p in pickles.items()],
        )

    def delete_sessions(self, account_id: str, device_id: int) -> None:
        self._db.execute(
            "DELETE FROM sessions WHERE account_id = ? AND device_id = ?", (account_id, device_id)
        )

    def all_sessions(self) -> list[tuple[str, int, str]]:
        return self._db.execute("SELECT account_id, device_id, pickle FROM sessions").fetchall()

    # History ---------------------------------------------------------------------------------

    def _seal_body(
        self, peer: str, client_id: str, outgoing: bool, text: str, author: str | None = None
    ) -> bytes:
        aad = body_aad(peer, outgoing, client_id, author)
        return self._sealer.seal(text.encode("utf-8"), aad=aad)

    def add_message(
        self,
        peer: str,
        client_id: str,
        outgoing: bool,
        sender_device: int,
        ts: int,
        text: str,
        status: str,
        db: sqlite3.Connection | None = None,
        *,
        server_ts: int = 0,
        author: str | None = None,
        shown: bool | None = None,
        extra: MessageExtra | None = None,
        expires_at: int | None = None,
    ) -> bool:
        """Store a message once; False when it was already there (a resend).

        ``author``: the account that wrote it, in a group conversation (peer ``g:<id>``);
        None in 1:1 conversations. A received message starts unshown: `porch recv` prints it
        unless some command (this process or another on the profile) has shown it already.
        ``extra``: attachments, reply, forwarded (history.py); ``expires_at``: ms, when a
        disappearing message is removed."""
        key = (peer, outgoing, client_id, author)
        cur = (db or self._db).execute(
            "INSERT OR IGNORE INTO messages (peer, client_id, outgoing, sender_device, ts, body,"
            " status, shown, server_ts, author, extra, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                peer,
                client_id,
                int(outgoing),
                sender_device,
                ts,
                self._seal_body(peer, client_id, outgoing, text, author),
                status,
                int(outgoing if shown is None else shown),
                server_ts,
                author or "",
                seal_extra(self._sealer, extra, extra_aad(*key)),
                expires_at,
            ),
        )
        return cur.rowcount > 0

    def set_status(
        self, peer: str, client_ids: list[str], outgoing: bool, status: str, ts: int | None = None
    ) -> list[str]:
        """Raise the status of messages (never lower it); returns the ids that changed."""
        changed = []
        rank = STATUS_ORDER[status]
        with self.transaction() as db:
            for cid in client_ids:
                row = db.execute(
                    "SELECT status FROM messages WHERE peer = ? AND outgoing = ? AND client_id = ?",
                    (peer, int(outgoing), cid),
                ).fetchone()
                if row is None or STATUS_ORDER.get(row[0], 0) >= rank:
                    continue
                if ts is None:
                    db.execute(
                        "UPDATE messages SET status = ?"
                        " WHERE peer = ? AND outgoing = ? AND client_id = ?",
                        (status, peer, int(outgoing), cid),
                    )
                else:
                    db.execute(
                        "UPDATE messages SET status = ?, ts = ? WHERE peer = ? AND outgoing = ?"
                        " AND client_id = ?",
                        (status, ts, peer, int(outgoing), cid),
                    )
                changed.append(cid)
        return changed

    def count_resend(self, peer: str, client_id: str) -> int:
        """Record one more resend of a message; returns how many there were before."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT count FROM resends WHERE peer = ? AND client_id = ?", (peer, client_id)
            ).fetchone()
            before = 0 if row is None else int(row[0])
            db.execute(
                "INSERT OR REPLACE INTO resends (peer, client_id, count) VALUES (?, ?, ?)",
                (peer, client_id, before + 1),
            )
        return before

    def resend_count(self, peer: str, client_id: str) -> int:
        row = self._db.execute(
            "SELECT count FROM resends WHERE peer = ? AND client_id = ?", (peer, client_id)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def conversations(self) -> list[Conversation]:
        rows = self._db.execute(
            "SELECT peer, MAX(id),"
            " SUM(CASE WHEN outgoing = 0 AND status = 'received' THEN 1 ELSE 0 END)"
            " FROM messages GROUP BY peer ORDER BY MAX(id) DESC"
        ).fetchall()
        out = []
        for peer, last_id, unread in rows:
            last = self._db.execute(
                "SELECT client_id, outgoing, ts, body, author FROM messages WHERE id = ?",
                (last_id,),
            ).fetchone()
            aad = body_aad(peer, last[1], last[0], last[4])
            text = self._sealer.open(last[3], aad=aad).decode("utf-8")
            out.append(Conversation(peer, last[2], text, int(unread or 0)))
        return out

    # Envelopes seen --------------------------------------------------------------------------

    def seen(self, envelope_id: int, server_ts: int) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM seen_envelopes WHERE id = ? AND ts = ?", (envelope_id, server_ts)
        )
        return row.fetchone() is not None

    def mark_seen(
        self, envelope_id: int, server_ts: int, db: sqlite3.Connection | None = None
    ) -> None:
        (db or self._db).execute(
            "INSERT OR IGNORE INTO seen_envelopes (id, ts) VALUES (?, ?)",
            (envelope_id, server_ts),
        )

    def prune_seen(self, before: int) -> None:
        self._db.execute("DELETE FROM seen_envelopes WHERE ts < ?", (before,))
