"""Column lists and row decoding shared by every store (sqlite3 rows and asyncpg records are
both indexed by position)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from porch.server.domain import Envelope
from porch.server.store.base import Account, Device, RegistrationSession

ACCOUNT_COLS = "id, phone, username, discoverable, master_key, created"
DEVICE_COLS = (
    "account_id, device_id, registration_id, name, curve25519, ed25519, signature, created, "
    "last_seen_day"
)
SESSION_COLS = "id_hash, phone, code_hash, attempts, expires"


def account_from(row: Sequence[Any] | None) -> Account | None:
    if row is None:
        return None
    return Account(row[0], row[1], row[2], bool(row[3]), row[4], row[5])


def device_from(row: Sequence[Any]) -> Device:
    return Device(*row)


def envelope_from(row: Sequence[Any]) -> Envelope:
    return Envelope(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7])


def session_from(row: Sequence[Any] | None) -> RegistrationSession | None:
    if row is None:
        return None
    code_hash = None if row[2] is None else bytes(row[2])
    return RegistrationSession(bytes(row[0]), row[1], code_hash, row[3], row[4])
