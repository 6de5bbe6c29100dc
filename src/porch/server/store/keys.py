"""Identity, one-time and fallback keys: one text per query, for every backend (sql.py)."""

from __future__ import annotations

from collections.abc import Sequence

from porch.server.store.base import ClaimedDevice, IdentityKeyTaken, PreKey
from porch.server.store.rows import DEVICE_COLS, device_from
from porch.server.store.sql import Op, SqlDomain, UniqueViolation, count, many, row, rows, value

MASTER_KEY_SET = "UPDATE accounts SET master_key = ? WHERE id = ?"
IDENTITY_SET = (
    "UPDATE devices SET curve25519 = ?, ed25519 = ?, signature = ?"
    " WHERE account_id = ? AND device_id = ?"
)
ONE_TIME_KEY_ADD = (
    "INSERT INTO one_time_keys (account_id, device_id, key_id, curve25519, signature)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
FALLBACK_KEY_SET = (
    "INSERT INTO fallback_keys (account_id, device_id, key_id, curve25519, signature)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, device_id) DO UPDATE SET"
    " key_id = excluded.key_id, curve25519 = excluded.curve25519,"
    " signature = excluded.signature"
)
ONE_TIME_KEYS_COUNT = "SELECT COUNT(*) FROM one_time_keys WHERE account_id = ? AND device_id = ?"
DEVICES_WITH_KEYS = (
    "SELECT " + DEVICE_COLS + " FROM devices"
    " WHERE account_id = ? AND curve25519 IS NOT NULL ORDER BY device_id"
)
# The lowest key, deleted as it is read. On PostgreSQL, SKIP LOCKED makes concurrent claims
# (on any node) each take a different key without waiting; SQLite's single writer runs one
# claim at a time, so no key is ever handed out twice on either.
ONE_TIME_KEY_TAKE = (
    "DELETE FROM one_time_keys WHERE {row_id} = (SELECT {row_id} FROM one_time_keys"
    " WHERE account_id = ? AND device_id = ? ORDER BY key_id LIMIT 1{skip_locked})"
    " RETURNING key_id, curve25519, signature"
)
FALLBACK_KEY = (
    "SELECT key_id, curve25519, signature FROM fallback_keys WHERE account_id = ? AND device_id = ?"
)


class SqlKeyStore(SqlDomain):
    async def set_identity(
        self,
        account_id: str,
        device_id: int,
        master_key: str,
        curve25519: str,
        ed25519: str,
        signature: str,
    ) -> None:
        def op() -> Op[None]:
            yield count(MASTER_KEY_SET, master_key, account_id)
            try:
                yield count(IDENTITY_SET, curve25519, ed25519, signature, account_id, device_id)
            except UniqueViolation:  # the unique indexes of migration 4
                raise IdentityKeyTaken(account_id) from None

        await self._write(op)

    async def add_one_time_keys(
        self, account_id: str, device_id: int, keys: Sequence[PreKey]
    ) -> int:
        def op() -> Op[int]:
            fresh = [
                (account_id, device_id, k.key_id, k.curve25519, k.signature)
                for k in keys
                if not k.fallback
            ]
            if fresh:
                yield many(ONE_TIME_KEY_ADD, fresh)
            for k in keys:
                if k.fallback:
                    yield count(
                        FALLBACK_KEY_SET, account_id, device_id, k.key_id, k.curve25519, k.signature
                    )
            return int((yield value(ONE_TIME_KEYS_COUNT, account_id, device_id)))

        return await self._write(op)

    async def count_one_time_keys(self, account_id: str, device_id: int) -> int:
        def op() -> Op[int]:
            return int((yield value(ONE_TIME_KEYS_COUNT, account_id, device_id)))

        return await self._read(op)

    async def claim_keys(
        self, account_id: str, device_ids: Sequence[int] | None
    ) -> list[ClaimedDevice]:
        def op() -> Op[list[ClaimedDevice]]:
            devices = [device_from(r) for r in (yield rows(DEVICES_WITH_KEYS, account_id))]
            if device_ids is not None:
                wanted = set(device_ids)
                devices = [d for d in devices if d.device_id in wanted]
            claimed = []
            for d in devices:
                taken = yield row(ONE_TIME_KEY_TAKE, account_id, d.device_id)
                key: PreKey | None
                if taken is not None:
                    key = PreKey(taken[0], taken[1], taken[2], False)
                else:
                    fb = yield row(FALLBACK_KEY, account_id, d.device_id)
                    key = None if fb is None else PreKey(fb[0], fb[1], fb[2], True)
                claimed.append(ClaimedDevice(d, key))
            return claimed

        return await self._write(op)
