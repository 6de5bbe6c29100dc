"""Groups in the client's local store (a part of LocalStore, store.py; issue 7 spec E).

What one device keeps per group: the server's view (revision, members and roles, settings,
the sealed state blob), the state this device opened from it, the group state keys by epoch,
its own outbound Megolm session with the devices it was shared with, and the inbound Megolm
sessions of the other member devices, keyed by (group, sender account, sender device, session
id) so that a session is only ever accepted from the device that shared it, for that group
(docs/protocol.md, "Group key content").

At rest: the opened state and the state keys are sealed with the profile key (AES-256-GCM,
associated data naming the table and row, as store.py seals message bodies); the Megolm
pickles are sealed by porch.crypto.megolm under a key derived from the profile key. Account
ids, roles, revisions and which devices got which session are plain, like the contacts table:
the server knows them too (docs/security.md, "Client store").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Final, Literal

from porch.crypto.at_rest import Sealer
from porch.crypto.group_state import GroupSettings, GroupState, decode_state, state_to_json

Role = Literal["admin", "member"]

# Tables only (CREATE ... IF NOT EXISTS, run at every open with store.SCHEMA), so they need no
# numbered migration and never depend on another helper's migration.
GROUP_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS groups (
        group_id TEXT PRIMARY KEY, revision INTEGER NOT NULL, role TEXT NOT NULL,
        blob BLOB NOT NULL, state BLOB, state_revision INTEGER NOT NULL DEFAULT 0,
        members_can_edit INTEGER NOT NULL, join_approval INTEGER NOT NULL,
        invite INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS group_members (
        group_id TEXT NOT NULL, account_id TEXT NOT NULL, role TEXT NOT NULL,
        PRIMARY KEY (group_id, account_id))""",
    """CREATE TABLE IF NOT EXISTS group_pending (
        group_id TEXT NOT NULL, account_id TEXT NOT NULL, PRIMARY KEY (group_id, account_id))""",
    """CREATE TABLE IF NOT EXISTS group_state_keys (
        group_id TEXT NOT NULL, epoch INTEGER NOT NULL, key BLOB NOT NULL,
        PRIMARY KEY (group_id, epoch))""",
    # rotate: a member left or was removed since the outbound session was made (spec E).
    """CREATE TABLE IF NOT EXISTS group_outbound (
        group_id TEXT PRIMARY KEY, pickle TEXT, rotate INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS group_shared (
        group_id TEXT NOT NULL, session_id TEXT NOT NULL, account_id TEXT NOT NULL,
        device_id INTEGER NOT NULL, PRIMARY KEY (group_id, session_id, account_id, device_id))""",
    """CREATE TABLE IF NOT EXISTS group_inbound (
        group_id TEXT NOT NULL, account_id TEXT NOT NULL, device_id INTEGER NOT NULL,
        session_id TEXT NOT NULL, pickle TEXT NOT NULL,
        PRIMARY KEY (group_id, account_id, device_id, session_id))""",
    "CREATE INDEX IF NOT EXISTS group_inbound_session ON group_inbound (session_id)",
]


# group_inbound rows of a member that went (close_inbound): no account id has a colon.
CLOSED_PREFIX: Final = "closed:"


@dataclass(frozen=True, slots=True)
class GroupMemberRow:
    account_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class LocalGroup:
    """A group as this device last fetched it. ``state`` is what this device opened from
    ``blob`` (None while it lacks the key) at ``state_revision``, the newest it accepted."""

    group_id: str
    revision: int
    role: Role
    blob: bytes
    settings: GroupSettings
    invite: bool
    members: tuple[GroupMemberRow, ...]
    pending: tuple[str, ...] = ()
    state: GroupState | None = None
    state_revision: int = 0


class GroupStore:
    _db: sqlite3.Connection
    _sealer: Sealer
    # Provided by LocalStore, which this mixin is part of.
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    # Groups ----------------------------------------------------------------------------------

    def put_group(self, group: LocalGroup) -> None:
        """Replace what is known of a group (its row, members and pending requests) at once."""
        state = None
        if group.state is not None:
            aad = _state_aad(group.group_id, group.state_revision)
            state = self._sealer.seal(state_to_json(group.state), aad=aad)
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO groups (group_id, revision, role, blob, state,"
                " state_revision, members_can_edit, join_approval, invite)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    group.group_id,
                    group.revision,
                    group.role,
                    group.blob,
                    state,
                    group.state_revision,
                    int(group.settings.members_can_edit),
                    int(group.settings.join_approval),
                    int(group.invite),
                ),
            )
            db.execute("DELETE FROM group_members WHERE group_id = ?", (group.group_id,))
            db.executemany(
                "INSERT INTO group_members (group_id, account_id, role) VALUES (?, ?, ?)",
                [(group.group_id, m.account_id, m.role) for m in group.members],
            )
            db.execute("DELETE FROM group_pending WHERE group_id = ?", (group.group_id,))
            db.executemany(
                "INSERT INTO group_pending (group_id, account_id) VALUES (?, ?)",
                [(group.group_id, a) for a in group.pending],
            )

    def get_group(self, group_id: str) -> LocalGroup | None:
        row = self._db.execute(
            "SELECT revision, role, blob, state, state_revision, members_can_edit,"
            " join_approval, invite FROM groups WHERE group_id = ?",
            (group_id,),
        ).fetchone()
        if row is None:
            return None
        revision, role, blob, sealed, state_revision, can_edit, approval, invite = row
        state = None
        if sealed is not None:
            aad = _state_aad(group_id, int(state_revision))
            state = decode_state(self._sealer.open(sealed, aad=aad))
        return LocalGroup(
            group_id=group_id,
            revision=int(revision),
            role=role,
            blob=bytes(blob),
            settings=GroupSettings(bool(can_edit), bool(approval)),
            invite=bool(invite),
            members=tuple(self.group_members(group_id)),
            pending=tuple(
                r[0]
                for r in self._db.execute(
                    "SELECT account_id FROM group_pending WHERE group_id = ? ORDER BY account_id",
                    (group_id,),
                )
            ),
            state=state,
            state_revision=int(state_revision),
        )

    def group_ids(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT group_id FROM groups ORDER BY group_id")]

    def group_members(self, group_id: str) -> list[GroupMemberRow]:
        rows = self._db.execute(
            "SELECT account_id, role FROM group_members WHERE group_id = ? ORDER BY account_id",
            (group_id,),
        ).fetchall()
        return [GroupMemberRow(a, r) for a, r in rows]

    def forget_group(self, group_id: str) -> None:
        """Drop everything about a group (this account left or was removed)."""
        with self.transaction() as db:
            for table in (
                "groups",
                "group_members",
                "group_pending",
                "group_state_keys",
                "group_outbound",
                "group_shared",
                "group_inbound",
            ):
                db.execute(f"DELETE FROM {table} WHERE group_id = ?", (group_id,))
            db.execute("DELETE FROM group_receipts WHERE peer = ?", (f"g:{group_id}",))

    # Group state keys ------------------------------------------------------------------------

    def put_state_key(self, group_id: str, epoch: int, key: bytes) -> bool:
        """Keep the key of an epoch; the first one kept wins (False: one was there already)."""
        sealed = self._sealer.seal(key, aad=f"group:key:{group_id}:{epoch}".encode())
        cur = self._db.execute(
            "INSERT OR IGNORE INTO group_state_keys (group_id, epoch, key) VALUES (?, ?, ?)",
            (group_id, epoch, sealed),
        )
        return cur.rowcount > 0

    def state_key(self, group_id: str, epoch: int) -> bytes | None:
        row = self._db.execute(
            "SELECT key FROM group_state_keys WHERE group_id = ? AND epoch = ?", (group_id, epoch)
        ).fetchone()
        if row is None:
            return None
        return self._sealer.open(row[0], aad=f"group:key:{group_id}:{epoch}".encode())

    def latest_state_key(self, group_id: str) -> tuple[int, bytes] | None:
        row = self._db.execute(
            "SELECT MAX(epoch) FROM group_state_keys WHERE group_id = ?", (group_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        epoch = int(row[0])
        key = self.state_key(group_id, epoch)
        return None if key is None else (epoch, key)

    # This device's outbound Megolm session ---------------------------------------------------

    def outbound_session(self, group_id: str) -> tuple[str | None, bool]:
        """(pickle or None, whether the next send must rotate)."""
        row = self._db.execute(
            "SELECT pickle, rotate FROM group_outbound WHERE group_id = ?", (group_id,)
        ).fetchone()
        return (None, False) if row is None else (row[0], bool(row[1]))

    def save_outbound_session(
        self, group_id: str, pickle: str, *, new: bool, db: sqlite3.Connection | None = None
    ) -> None:
        """Store the outbound pickle; ``new`` (a rotation) also clears the rotate mark and the
        record of whom the previous session was shared with."""
        conn = db or self._db
        if new:
            conn.execute("DELETE FROM group_shared WHERE group_id = ?", (group_id,))
            conn.execute(
                "INSERT OR REPLACE INTO group_outbound (group_id, pickle, rotate) VALUES (?, ?, 0)",
                (group_id, pickle),
            )
        else:
            conn.execute(
                "UPDATE group_outbound SET pickle = ? WHERE group_id = ?", (pickle, group_id)
            )

    def mark_rotate(self, group_id: str) -> None:
        """A member left or was removed: the next send starts a new outbound session."""
        self._db.execute(
            "INSERT INTO group_outbound (group_id, pickle, rotate) VALUES (?, NULL, 1)"
            " ON CONFLICT (group_id) DO UPDATE SET rotate = 1",
            (group_id,),
        )

    def shared_with(self, group_id: str, session_id: str) -> set[tuple[str, int]]:
        rows = self._db.execute(
            "SELECT account_id, device_id FROM group_shared WHERE group_id = ? AND session_id = ?",
            (group_id, session_id),
        ).fetchall()
        return {(str(a), int(d)) for a, d in rows}

    def add_shared(
        self,
        group_id: str,
        session_id: str,
        devices: Iterable[tuple[str, int]],
        db: sqlite3.Connection | None = None,
    ) -> None:
        (db or self._db).executemany(
            "INSERT OR IGNORE INTO group_shared (group_id, session_id, account_id, device_id)"
            " VALUES (?, ?, ?, ?)",
            [(group_id, session_id, a, d) for a, d in devices],
        )

    # Other devices' inbound Megolm sessions --------------------------------------------------

    def inbound_session(
        self, group_id: str, account_id: str, device_id: int, session_id: str
    ) -> str | None:
        row = self._db.execute(
            "SELECT pickle FROM group_inbound WHERE group_id = ? AND account_id = ?"
            " AND device_id = ? AND session_id = ?",
            (group_id, account_id, device_id, session_id),
        ).fetchone()
        return None if row is None else str(row[0])

    def inbound_session_known(self, session_id: str) -> bool:
        """Whether a session with this id is stored for any group or device (to tell "not
        yet received" from "belongs to someone else")."""
        row = self._db.execute(
            "SELECT 1 FROM group_inbound WHERE session_id = ? LIMIT 1", (session_id,)
        ).fetchone()
        return row is not None

    def close_inbound(
        self, group_id: str, accounts: set[str], db: sqlite3.Connection | None = None
    ) -> None:
        """Mark the sessions these accounts shared for the group as theirs from before they
        went (removed or left): kept under ``CLOSED_PREFIX + account`` so that what they
        send with them later still opens (a leaver's own ``leave`` update is sent after it
        left) but is known not to be the group's (GroupCrypto.decrypt, ``closed``)."""
        (db or self._db).executemany(
            "UPDATE OR REPLACE group_inbound SET account_id = ? WHERE group_id = ?"
            " AND account_id = ?",
            [(CLOSED_PREFIX + a, group_id, a) for a in sorted(accounts)],
        )

    def save_inbound_sessions(
        self,
        pickles: dict[tuple[str, str, int, str], str],
        db: sqlite3.Connection | None = None,
    ) -> None:
        """Store inbound pickles keyed by (group, sender account, sender device, session)."""
        (db or self._db).executemany(
            "INSERT OR REPLACE INTO group_inbound (group_id, account_id, device_id, session_id,"
            " pickle) VALUES (?, ?, ?, ?, ?)",
            [(g, a, d, s, p) for (g, a, d, s), p in pickles.items()],
        )


def _state_aad(group_id: str, revision: int) -> bytes:
    # Bound to the revision too, so an older sealed state cannot be put back under a newer one.
    return f"group:state:{group_id}:{revision}".encode()
