"""Ticks on one's own group texts (a part of LocalStore, store.py; docs/design.md, "Ticks in
groups").

Receipts for a group text go 1:1 to its author (docs/protocol.md, "Group messages"), so the
author learns each member's answer separately. A group text is *delivered* once every member
it went to that is still in the group answered delivered (or read), and *read* once all of
them read it: members who left are not waited for, members added after it never had it, and
a text whose members all left stays *sent*. The browser keeps the same rule
(web/src/core/group_live.ts), so both clients show the same ticks.

``group_receipts`` holds, per own group text, each member it went to and that member's best
answer. Rows of a text every member read, or whose members all left, are deleted (its status
can rise no more); so are those of a text that expired or was deleted (``forget_group_text``,
from rich_store.py), and a group's rows go with the group (``forget_group``). At rest the
rows are plain, like the statuses of 1:1 messages (docs/protocol.md, section 9;
docs/security.md, "Client store").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Final

GROUP_TICKS_SCHEMA: Final = [
    """CREATE TABLE IF NOT EXISTS group_receipts (
        peer TEXT NOT NULL, client_id TEXT NOT NULL, member TEXT NOT NULL,
        status TEXT NOT NULL, PRIMARY KEY (peer, client_id, member))""",
    "CREATE INDEX IF NOT EXISTS group_receipts_member ON group_receipts (member, client_id)",
]

_RANK: Final = {"pending": 0, "sent": 1, "delivered": 2, "read": 3}
_RISES: Final = frozenset(_RANK)  # statuses a receipt may raise ("failed" is final)
# A receipt names at most this many ids (the receipt content's own bound, spec D); a longer
# list is looked up in chunks so one statement stays within SQLite's variable limit.
_CHUNK: Final = 500


class GroupTicks:
    """The ``group_receipts`` side of LocalStore (mixed in; uses its connection)."""

    _db: sqlite3.Connection
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def record_group_recipients(
        self, peer: str, client_id: str, members: Iterable[str], db: sqlite3.Connection
    ) -> None:
        """The members (never oneself) a new group text goes to, inside the caller's
        transaction (the one that queues the text)."""
        db.executemany(
            "INSERT OR IGNORE INTO group_receipts (peer, client_id, member, status)"
            " VALUES (?, ?, ?, 'sent')",
            [(peer, client_id, m) for m in members],
        )

    def group_receipt(self, member: str, ids: Iterable[str], kind: str) -> dict[str, list[str]]:
        """A member's receipt for texts of one's own: record it and raise the texts whose
        members have now all answered. Returns {group peer: client ids whose status rose}."""
        rank = _RANK.get(kind)
        if rank is None:
            return {}
        raised: dict[str, list[str]] = {}
        wanted = list(dict.fromkeys(ids))
        # Most receipts are for 1:1 texts: look before taking the write lock.
        if not any(self._rows(self._db, member, chunk) for chunk in _chunks(wanted)):
            return raised
        with self.transaction() as db:
            for chunk in _chunks(wanted):
                for peer, client_id, status in self._rows(db, member, chunk):
                    if _RANK.get(status, 0) >= rank:
                        continue
                    db.execute(
                        "UPDATE group_receipts SET status = ?"
                        " WHERE peer = ? AND client_id = ? AND member = ?",
                        (kind, peer, client_id, member),
                    )
                    if _raise(db, peer, client_id):
                        raised.setdefault(peer, []).append(client_id)
        return raised

    @staticmethod
    def _rows(db: sqlite3.Connection, member: str, chunk: list[str]) -> list[tuple[str, str, str]]:
        marks = ",".join("?" * len(chunk))
        return db.execute(
            "SELECT peer, client_id, status FROM group_receipts"
            f" WHERE member = ? AND client_id IN ({marks})",
            (member, *chunk),
        ).fetchall()


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _raise(db: sqlite3.Connection, peer: str, client_id: str) -> bool:
    """Set the text's status to the least answer of the members still in the group; True if
    it rose. Never lowers a status (a read text stays read)."""
    group_id = peer.removeprefix("g:")
    answers = [
        str(r[0])
        for r in db.execute(
            "SELECT r.status FROM group_receipts r JOIN group_members m"
            " ON m.group_id = ? AND m.account_id = r.member"
            " WHERE r.peer = ? AND r.client_id = ?",
            (group_id, peer, client_id),
        )
    ]
    if not answers:  # every member it went to left: it stays as it is, and its rows are done
        forget_group_text(db, peer, client_id)
        return False
    least = min(answers, key=lambda s: _RANK.get(s, 0))
    if least == "sent":
        return False
    if least == "read":  # it can rise no more: its rows are done
        forget_group_text(db, peer, client_id)
    current = db.execute(
        "SELECT status FROM messages WHERE peer = ? AND outgoing = 1 AND client_id = ?",
        (peer, client_id),
    ).fetchone()
    if current is None or str(current[0]) not in _RISES or _RANK[str(current[0])] >= _RANK[least]:
        return False  # gone, final (failed, cancelled) or already as high
    db.execute(
        "UPDATE messages SET status = ? WHERE peer = ? AND outgoing = 1 AND client_id = ?",
        (least, peer, client_id),
    )
    return True


def forget_group_text(db: sqlite3.Connection, peer: str, client_id: str) -> None:
    """Drop a text's receipt rows: it can rise no more, expired, or was deleted. A no-op for
    a 1:1 text or one received (they have no rows)."""
    db.execute("DELETE FROM group_receipts WHERE peer = ? AND client_id = ?", (peer, client_id))
