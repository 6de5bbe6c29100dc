"""Contacts and their devices in the client's local store (a part of LocalStore, store.py).

What the client knows of the people it talks to: the master key pinned on first use, the
phone number and username it looked up or the server reported, and each device's keys.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PeerDeviceRow:
    account_id: str
    device_id: int
    registration_id: int
    curve25519: str
    ed25519: str


class Contacts:
    _db: sqlite3.Connection
    # Provided by LocalStore, which this mixin is part of.
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def contact_master_key(self, account_id: str) -> str | None:
        row = self._db.execute(
            "SELECT master_key FROM contacts WHERE account_id = ?", (account_id,)
        ).fetchone()
        return None if row is None else row[0]

    def contact_device_list(self, account_id: str) -> tuple[int, frozenset[int]] | None:
        """The (version, device ids) of the contact's signed device list last accepted."""
        row = self._db.execute(
            "SELECT list_version, list_devices FROM contacts WHERE account_id = ?", (account_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        ids = frozenset(int(i) for i in str(row[1] or "").split(",") if i)
        return int(row[0]), ids

    def set_contact_device_list(
        self, account_id: str, listed: tuple[int, frozenset[int]] | None
    ) -> None:
        version, ids = (None, None) if listed is None else listed
        text = None if ids is None else ",".join(str(i) for i in sorted(ids))
        self._db.execute(
            "INSERT INTO contacts (account_id, list_version, list_devices) VALUES (?, ?, ?)"
            " ON CONFLICT (account_id) DO UPDATE SET list_version = excluded.list_version,"
            " list_devices = excluded.list_devices",
            (account_id, version, text),
        )

    def set_contact(
        self,
        account_id: str,
        *,
        master_key: str | None = None,
        phone: str | None = None,
        username: str | None = None,
    ) -> None:
        self._db.execute(
            "INSERT INTO contacts (account_id, master_key, phone, username) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (account_id) DO UPDATE SET"
            " master_key = COALESCE(excluded.master_key, master_key),"
            " phone = COALESCE(excluded.phone, phone),"
            " username = COALESCE(excluded.username, username)",
            (account_id, master_key, phone, username),
        )

    def find_contact(self, *, phone: str | None = None, username: str | None = None) -> str | None:
        if phone is not None:
            row = self._db.execute("SELECT account_id FROM contacts WHERE phone = ?", (phone,))
        else:
            row = self._db.execute(
                "SELECT account_id FROM contacts WHERE username = ?", (username,)
            )
        found = row.fetchone()
        return None if found is None else str(found[0])

    def set_contact_name(self, account_id: str, username: str | None, phone: str | None) -> None:
        """Cache what the server reports as the account's public name (GET .../profile)."""
        self._db.execute(
            "INSERT INTO contacts (account_id, phone, username, named) VALUES (?, ?, ?, 1)"
            " ON CONFLICT (account_id) DO UPDATE SET username = excluded.username,"
            " phone = COALESCE(excluded.phone, phone), named = 1",
            (account_id, phone, username),
        )

    def contact_named(self, account_id: str) -> bool:
        """Whether the account's public name was fetched (or is known from a lookup)."""
        row = self._db.execute(
            "SELECT named, username, phone FROM contacts WHERE account_id = ?", (account_id,)
        ).fetchone()
        return row is not None and bool(row[0] or row[1] or row[2])

    def contact_label(self, account_id: str) -> str:
        row = self._db.execute(
            "SELECT username, phone FROM contacts WHERE account_id = ?", (account_id,)
        ).fetchone()
        if row is not None and row[0]:
            return f"@{row[0]}"
        if row is not None and row[1]:
            return str(row[1])
        return account_id[:8]

    def peer_devices(self, account_id: str) -> list[PeerDeviceRow]:
        rows = self._db.execute(
            "SELECT account_id, device_id, registration_id, curve25519, ed25519 FROM peer_devices"
            " WHERE account_id = ? ORDER BY device_id",
            (account_id,),
        ).fetchall()
        return [PeerDeviceRow(*r) for r in rows]

    def put_peer_devices(
        self, account_id: str, devices: list[PeerDeviceRow], replace: bool
    ) -> None:
        with self.transaction() as db:
            if replace:
                db.execute("DELETE FROM peer_devices WHERE account_id = ?", (account_id,))
            db.executemany(
                "INSERT OR REPLACE INTO peer_devices VALUES (?, ?, ?, ?, ?)",
                [
                    (d.account_id, d.device_id, d.registration_id, d.curve25519, d.ed25519)
                    for d in devices
                ],
            )

    def drop_peer_device(self, account_id: str, device_id: int) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM peer_devices WHERE account_id = ? AND device_id = ?",
                (account_id, device_id),
            )
            db.execute(
                "DELETE FROM sessions WHERE account_id = ? AND device_id = ?",
                (account_id, device_id),
            )
