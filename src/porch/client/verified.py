"""Verified safety numbers, and the sends that wait while a verified contact's key changed.

docs/design.md, "Verified contacts": the store keeps, per contact, the master key whose safety
number the user compared (``contacts.verified_key``). Verification is keyed on that key, not on
a flag, so when the pinned key (``contacts.master_key``, porch.client.core.keys) changes, the
contact is "verified, key changed" by itself, with nothing to update. While it is, the core
moves the user's messages to that contact into the outbox state ``paused`` (as Signal blocks
sending to an untrusted identity until the user accepts it); accepting the new key or
verifying it again queues them again. A mixin of LocalStore, like porch.client.shared.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from enum import StrEnum

PAUSED = "paused"
IDENTITY_CHANGED = "identity_changed"


class Verification(StrEnum):
    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    KEY_CHANGED = "verified_key_changed"  # verified once; the master key is another one now


class VerifiedKeys:
    _db: sqlite3.Connection

    # Provided by LocalStore, which this mixin is part of.
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def verified_key(self, account_id: str) -> str | None:
        row = self._db.execute(
            "SELECT verified_key FROM contacts WHERE account_id = ?", (account_id,)
        ).fetchone()
        return None if row is None else row[0]

    def set_verified_key(self, account_id: str, master_key: str | None) -> None:
        """Record the master key the user verified (None: not verified any more)."""
        self._db.execute(
            "INSERT INTO contacts (account_id, verified_key) VALUES (?, ?)"
            " ON CONFLICT (account_id) DO UPDATE SET verified_key = excluded.verified_key",
            (account_id, master_key),
        )

    def verification(self, account_id: str) -> Verification:
        row = self._db.execute(
            "SELECT master_key, verified_key FROM contacts WHERE account_id = ?", (account_id,)
        ).fetchone()
        if row is None or row[1] is None:
            return Verification.UNVERIFIED
        return Verification.VERIFIED if row[0] == row[1] else Verification.KEY_CHANGED

    def pause(self, client_id: str, message: str) -> bool:
        """Hold a queued item until its recipient's new key is accepted (not sent meanwhile)."""
        cur = self._db.execute(
            "UPDATE outbox SET state = ?, error_code = ?, error = ?"
            " WHERE client_id = ? AND state = 'queued'",
            (PAUSED, IDENTITY_CHANGED, message[:500], client_id),
        )
        return cur.rowcount > 0

    def resume(self, recipient: str) -> int:
        """Queue the paused items to recipient again, in their order; returns how many."""
        with self.transaction() as db:
            rows = db.execute(
                "SELECT client_id FROM outbox WHERE recipient = ? AND state = ? ORDER BY seq",
                (recipient, PAUSED),
            ).fetchall()
            for (client_id,) in rows:
                # A new seq each, as retry() does: a running owner only reads rows after its
                # cursor.
                db.execute(
                    "UPDATE outbox SET state = 'queued', error_code = NULL, error = NULL,"
                    " seq = (SELECT MAX(seq) + 1 FROM outbox) WHERE client_id = ?",
                    (client_id,),
                )
        return len(rows)

    def paused_count(self, recipient: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE recipient = ? AND state = ?", (recipient, PAUSED)
        ).fetchone()
        return int(row[0])
