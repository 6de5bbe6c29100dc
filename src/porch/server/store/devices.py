"""Provisioning channels and codes, linking a device, signed device lists (spec C).

One text per query, for every backend (sql.py). Channels and codes are keyed by the SHA-256
of what the client holds, so a copy of the database holds no live channel id or code.
"""

from __future__ import annotations

from collections.abc import Sequence

from porch.protocol.fields import MAX_DEVICE_ID
from porch.server.store.base import (
    CodeNotFound,
    Device,
    DeviceListStale,
    LinkedDevice,
    StoredDeviceList,
    TooManyDevices,
)
from porch.server.store.rows import DEVICE_COLS, device_from
from porch.server.store.sql import Op, SqlDomain, count, many, row, rows, value

DAY_MS = 86_400_000

CHANNEL_ADD = "INSERT INTO provisioning_channels (id_hash, body, expires) VALUES (?, NULL, ?)"
CHANNEL_GET = "SELECT body FROM provisioning_channels WHERE id_hash = ? AND expires > ?"
# Of two concurrent readers of a filled channel, only one gets the body.
CHANNEL_TAKE = (
    "DELETE FROM provisioning_channels WHERE id_hash = ? AND body IS NOT NULL RETURNING body"
)
CHANNEL_FILL = (
    "UPDATE provisioning_channels SET body = ? WHERE id_hash = ? AND body IS NULL AND expires > ?"
)
CODE_ADD = "INSERT INTO provisioning_codes (code_hash, account_id, expires) VALUES (?, ?, ?)"
CODE_TAKE = (
    "DELETE FROM provisioning_codes WHERE code_hash = ? AND expires > ? RETURNING account_id"
)
# Locks the account row: concurrent links of one account (on any node) run one at a time,
# so two of them can never both pass the device count or take the same id.
ACCOUNT_LOCK = "SELECT id FROM accounts WHERE id = ?{for_update}"
DEVICE_SPAN = "SELECT COUNT(*), COALESCE(MAX(device_id), 0) FROM devices WHERE account_id = ?"
COUNTER_GET = "SELECT last_device_id FROM device_counters WHERE account_id = ?"
COUNTER_SET = (
    "INSERT INTO device_counters (account_id, last_device_id) VALUES (?, ?)"
    " ON CONFLICT (account_id) DO UPDATE SET last_device_id = excluded.last_device_id"
)
LINKED_DEVICE_ADD = (
    "INSERT INTO devices (account_id, device_id, registration_id, name, password_hash,"
    " created, last_seen_day) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
CURRENT_DEVICES = (
    "SELECT " + DEVICE_COLS + " FROM devices WHERE account_id = ? AND curve25519 IS NOT NULL"
    " AND (NOT EXISTS (SELECT 1 FROM device_lists l WHERE l.account_id = devices.account_id)"
    " OR EXISTS (SELECT 1 FROM device_list_entries e WHERE e.account_id = devices.account_id"
    " AND e.device_id = devices.device_id)) ORDER BY device_id"
)
LIST_GET = "SELECT version, list, signature FROM device_lists WHERE account_id = ?"
# Only a higher version replaces the stored list; the condition and the write are one
# statement, so two concurrent uploads of one version cannot both win.
LIST_PUT = (
    "INSERT INTO device_lists (account_id, version, list, signature) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (account_id) DO UPDATE SET version = excluded.version,"
    " list = excluded.list, signature = excluded.signature"
    " WHERE device_lists.version < excluded.version RETURNING version"
)
ENTRIES_DELETE = "DELETE FROM device_list_entries WHERE account_id = ?"
ENTRY_ADD = "INSERT INTO device_list_entries (account_id, device_id) VALUES (?, ?)"
EXPIRED = (
    "DELETE FROM provisioning_channels WHERE expires <= ?",
    "DELETE FROM provisioning_codes WHERE expires <= ?",
)


class SqlDeviceStore(SqlDomain):
    async def open_channel(self, id_hash: bytes, expires: int) -> None:
        await self._write(lambda: _count(CHANNEL_ADD, id_hash, expires))

    async def take_channel(self, id_hash: bytes, now: int) -> tuple[bool, str | None]:
        def op() -> Op[tuple[bool, str | None]]:
            found = yield row(CHANNEL_GET, id_hash, now)
            if found is None:
                return False, None
            if found[0] is None:
                return True, None
            taken = yield value(CHANNEL_TAKE, id_hash)
            # Taken by a concurrent reader: answered as gone, like a channel read before.
            return (taken is not None), (None if taken is None else str(taken))

        return await self._write(op)

    async def fill_channel(self, id_hash: bytes, body: str, now: int) -> bool | None:
        def op() -> Op[bool | None]:
            if (yield count(CHANNEL_FILL, body, id_hash, now)) > 0:
                return True
            exists = yield row(CHANNEL_GET, id_hash, now)
            return None if exists is None else False

        return await self._write(op)

    async def put_provisioning_code(self, code_hash: bytes, account_id: str, expires: int) -> None:
        await self._write(lambda: _count(CODE_ADD, code_hash, account_id, expires))

    async def link_device(
        self,
        code_hash: bytes,
        now: int,
        password_hash: bytes,
        registration_id: int,
        name: str,
        max_devices: int,
    ) -> LinkedDevice:
        def op() -> Op[LinkedDevice]:
            account_id = yield value(CODE_TAKE, code_hash, now)
            if account_id is None or (yield value(ACCOUNT_LOCK, account_id)) is None:
                raise CodeNotFound()
            span = yield row(DEVICE_SPAN, account_id)
            devices, highest = int(span[0]), int(span[1])
            last = yield value(COUNTER_GET, account_id)
            device_id = max(highest, 0 if last is None else int(last)) + 1
            # Raised inside the transaction, so the code is not used up (rolled back).
            if devices >= max_devices or device_id > MAX_DEVICE_ID:
                raise TooManyDevices()
            yield count(COUNTER_SET, account_id, device_id)
            yield count(
                LINKED_DEVICE_ADD,
                account_id,
                device_id,
                registration_id,
                name,
                password_hash,
                now,
                now // DAY_MS,
            )
            return LinkedDevice(str(account_id), device_id)

        return await self._write(op)

    async def current_devices(self, account_id: str) -> list[Device]:
        def op() -> Op[list[Device]]:
            return [device_from(r) for r in (yield rows(CURRENT_DEVICES, account_id))]

        return await self._read(op)

    async def get_device_list(self, account_id: str) -> StoredDeviceList | None:
        def op() -> Op[StoredDeviceList | None]:
            found = yield row(LIST_GET, account_id)
            if found is None:
                return None
            return StoredDeviceList(int(found[0]), bytes(found[1]), bytes(found[2]))

        return await self._read(op)

    async def put_device_list(
        self,
        account_id: str,
        version: int,
        payload: bytes,
        signature: bytes,
        device_ids: Sequence[int],
    ) -> None:
        def op() -> Op[None]:
            stored = yield value(LIST_PUT, account_id, version, payload, signature)
            if stored is None:
                raise DeviceListStale()
            yield count(ENTRIES_DELETE, account_id)
            yield many(ENTRY_ADD, [(account_id, d) for d in sorted(set(device_ids))])

        await self._write(op)

    async def sweep_provisioning(self, now: int) -> int:
        def op() -> Op[int]:
            total = 0
            for sql in EXPIRED:
                total += yield count(sql, now)
            return total

        return await self._write(op)


def _count(sql: str, *args: object) -> Op[int]:
    return int((yield count(sql, *args)))
