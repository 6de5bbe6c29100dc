"""Column lists and row decoding shared by the SQLite and PostgreSQL stores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from porch.server.store.base import Account, Device

ACCOUNT_COLS = "id, phone, username, discoverable, master_key, created"
DEVICE_COLS = (
    "account_id, device_id, registration_id, name, curve25519, ed25519, signature, created, "
    "last_seen_day"
)
ENVELOPE_COLS = "id, account_id, device_id, sender_account, sender_device, ts, kind, body"


def account_from(row: Sequence[Any] | None) -> Account | None:
    if row is None:
        return None
    return Account(row[0], row[1], row[2], bool(row[3]), row[4], row[5])


def device_from(row: Sequence[Any]) -> Device:
    return Device(*row)
