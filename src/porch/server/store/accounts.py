"""Accounts, devices and blocks: one text per query, for every backend (sql.py)."""

from __future__ import annotations

from porch.server.store import payloads
from porch.server.store.base import Account, Device, DeviceAuth, UsernameTaken
from porch.server.store.rows import ACCOUNT_COLS, DEVICE_COLS, account_from, device_from
from porch.server.store.sql import Op, SqlDomain, UniqueViolation, count, row, rows, value

DAY_MS = 86_400_000

# The server_secrets table (named so, as a linter takes "secret" for a password).
KEPT_ADD = "INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING"
KEPT_GET = "SELECT value FROM server_secrets WHERE name = ?"
ACCOUNT_BY_PHONE_LOCKED = "SELECT id FROM accounts WHERE phone = ?{for_update}"
ACCOUNT_ADD = (
    "INSERT INTO accounts (id, phone, discoverable, created) VALUES (?, ?, 1, ?)"
    " ON CONFLICT (phone) DO NOTHING RETURNING id"
)
# Re-registration replaces every device and drops what was queued for them; the new device
# starts afresh, so the old devices' send ids mean nothing to it.
ACCOUNT_RESET = (
    "DELETE FROM envelopes WHERE account_id = ?",
    "DELETE FROM one_time_keys WHERE account_id = ?",
    "DELETE FROM fallback_keys WHERE account_id = ?",
    "DELETE FROM devices WHERE account_id = ?",
    "DELETE FROM sent_messages WHERE sender_account = ?",
    "UPDATE accounts SET master_key = NULL WHERE id = ?",
    # The old master key's device list and codes mean nothing to the new identity (spec C).
    "DELETE FROM device_lists WHERE account_id = ?",
    "DELETE FROM device_list_entries WHERE account_id = ?",
    "DELETE FROM provisioning_codes WHERE account_id = ?",
    # The old devices' browsers must not be woken for the new device 1.
    "DELETE FROM push_subscriptions WHERE account_id = ?",
)
DEVICE_ADD = (
    "INSERT INTO devices (account_id, device_id, registration_id, name, password_hash,"
    " created, last_seen_day) VALUES (?, 1, ?, ?, ?, ?, ?)"
)
ACCOUNT_BY_ID = "SELECT " + ACCOUNT_COLS + " FROM accounts WHERE id = ?"
ACCOUNT_BY_PHONE = "SELECT " + ACCOUNT_COLS + " FROM accounts WHERE phone = ?"
ACCOUNT_BY_USERNAME = "SELECT " + ACCOUNT_COLS + " FROM accounts WHERE username = ?"
USERNAME_SET = "UPDATE accounts SET username = ? WHERE id = ?"
DISCOVERABLE_SET = "UPDATE accounts SET discoverable = ? WHERE id = ?"
DEVICE_AUTH = (
    "SELECT password_hash, registration_id FROM devices WHERE account_id = ? AND device_id = ?"
)
DEVICES = "SELECT " + DEVICE_COLS + " FROM devices WHERE account_id = ? ORDER BY device_id"
DEVICE_DELETE_RELATED = (
    "DELETE FROM envelopes WHERE account_id = ? AND device_id = ?",
    "DELETE FROM one_time_keys WHERE account_id = ? AND device_id = ?",
    "DELETE FROM fallback_keys WHERE account_id = ? AND device_id = ?",
    # Out of the send check at once, before the account publishes a list without it.
    "DELETE FROM device_list_entries WHERE account_id = ? AND device_id = ?",
    "DELETE FROM push_subscriptions WHERE account_id = ? AND device_id = ?",
)
DEVICE_DELETE = "DELETE FROM devices WHERE account_id = ? AND device_id = ?"
# Only a new day is written: a connection costs no write on the days it was seen already.
DEVICE_TOUCH = (
    "UPDATE devices SET last_seen_day = ?"
    " WHERE account_id = ? AND device_id = ? AND last_seen_day <> ?"
)
BLOCK_ADD = "INSERT INTO blocks (account_id, blocked_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
BLOCK_DELETE = "DELETE FROM blocks WHERE account_id = ? AND blocked_id = ?"
BLOCKS = "SELECT blocked_id FROM blocks WHERE account_id = ? ORDER BY blocked_id"


class SqlAccountStore(SqlDomain):
    async def secret(self, name: str, candidate: bytes) -> bytes:
        def op() -> Op[bytes]:
            yield count(KEPT_ADD, name, candidate)
            return bytes((yield value(KEPT_GET, name)))

        return await self._write(op)

    async def register(
        self,
        phone: str,
        password_hash: bytes,
        registration_id: int,
        name: str,
        now: int,
        new_account_id: str,
    ) -> tuple[str, int, bool]:
        def op() -> Op[tuple[str, int, bool]]:
            existing = yield value(ACCOUNT_BY_PHONE_LOCKED, phone)
            replaced = existing is not None
            if existing is None:
                account_id = new_account_id
                if (yield value(ACCOUNT_ADD, account_id, phone, now)) is None:
                    # Registered concurrently (another node): taken over like a re-register,
                    # with the row locked, so that concurrent takeovers run one after another
                    # (each then sees, and replaces, the device the one before it wrote).
                    account_id = yield value(ACCOUNT_BY_PHONE_LOCKED, phone)
                    replaced = True
            else:
                account_id = existing
            if replaced:
                found = yield rows(payloads.OF_ACCOUNT, account_id)
                for sql in ACCOUNT_RESET:
                    yield count(sql, account_id)
                yield from payloads.drop_orphans(r[0] for r in found)
            yield count(
                DEVICE_ADD, account_id, registration_id, name, password_hash, now, now // DAY_MS
            )
            return str(account_id), 1, replaced

        return await self._write(op)

    async def get_account(self, account_id: str) -> Account | None:
        return await self._read(lambda: _account(ACCOUNT_BY_ID, account_id))

    async def get_account_by_phone(self, phone: str) -> Account | None:
        return await self._read(lambda: _account(ACCOUNT_BY_PHONE, phone))

    async def get_account_by_username(self, username: str) -> Account | None:
        return await self._read(lambda: _account(ACCOUNT_BY_USERNAME, username))

    async def set_username(self, account_id: str, username: str | None) -> None:
        def op() -> Op[None]:
            try:
                yield count(USERNAME_SET, username, account_id)
            except UniqueViolation:
                raise UsernameTaken(username) from None

        await self._write(op)

    async def set_discoverable(self, account_id: str, discoverable: bool) -> None:
        await self._write(lambda: _count(DISCOVERABLE_SET, int(discoverable), account_id))

    async def get_device_auth(self, account_id: str, device_id: int) -> DeviceAuth | None:
        def op() -> Op[DeviceAuth | None]:
            found = yield row(DEVICE_AUTH, account_id, device_id)
            return None if found is None else DeviceAuth(bytes(found[0]), found[1])

        return await self._read(op)

    async def list_devices(self, account_id: str) -> list[Device]:
        def op() -> Op[list[Device]]:
            return [device_from(r) for r in (yield rows(DEVICES, account_id))]

        return await self._read(op)

    async def delete_device(self, account_id: str, device_id: int) -> bool:
        def op() -> Op[bool]:
            found = yield rows(payloads.OF_DEVICE, account_id, device_id)
            for sql in DEVICE_DELETE_RELATED:
                yield count(sql, account_id, device_id)
            yield from payloads.drop_orphans(r[0] for r in found)
            return bool((yield count(DEVICE_DELETE, account_id, device_id)) > 0)

        return await self._write(op)

    async def touch_device(self, account_id: str, device_id: int, day: int) -> None:
        await self._write(lambda: _count(DEVICE_TOUCH, day, account_id, device_id, day))

    async def set_block(self, account_id: str, blocked_id: str, blocked: bool) -> None:
        sql = BLOCK_ADD if blocked else BLOCK_DELETE
        await self._write(lambda: _count(sql, account_id, blocked_id))

    async def list_blocks(self, account_id: str) -> list[str]:
        def op() -> Op[list[str]]:
            return [r[0] for r in (yield rows(BLOCKS, account_id))]

        return await self._read(op)


def _account(sql: str, key: str) -> Op[Account | None]:
    return account_from((yield row(sql, key)))


def _count(sql: str, *args: object) -> Op[int]:
    return int((yield count(sql, *args)))
