"""Push subscriptions (docs/security.md, "Push"): at most one per (account, device).

The row is what the device gave: its push service endpoint and, for Web Push, the browser's
p256dh and auth keys, plus when it was stored. Deleting a device or re-registering the
account deletes its subscriptions with everything else of the device (store/accounts.py).
"""

from __future__ import annotations

from typing import Any, Protocol

from porch.server.providers.push import PushSubscription
from porch.server.store.sql import Op, SqlDomain, count, row

PUSH_COLS = "account_id, device_id, provider, endpoint, p256dh, auth, created"
# One per device: a new subscription (the browser renewed it) replaces the old one.
PUSH_PUT = (
    "INSERT INTO push_subscriptions (" + PUSH_COLS + ") VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (account_id, device_id) DO UPDATE SET provider = excluded.provider,"
    " endpoint = excluded.endpoint, p256dh = excluded.p256dh, auth = excluded.auth,"
    " created = excluded.created"
)
PUSH_GET = "SELECT " + PUSH_COLS + " FROM push_subscriptions WHERE account_id = ? AND device_id = ?"
PUSH_DELETE = "DELETE FROM push_subscriptions WHERE account_id = ? AND device_id = ?"
# Only the subscription that was used: a renewal stored meanwhile is kept.
PUSH_DELETE_GONE = (
    "DELETE FROM push_subscriptions WHERE account_id = ? AND device_id = ? AND endpoint = ?"
)


class PushStore(Protocol):
    async def put_push_subscription(self, subscription: PushSubscription) -> None:
        """Store the device's subscription, replacing the one it had."""
        ...

    async def get_push_subscription(
        self, account_id: str, device_id: int
    ) -> PushSubscription | None: ...
    async def delete_push_subscription(
        self, account_id: str, device_id: int, endpoint: str | None = None
    ) -> bool:
        """Delete the device's subscription (only if its endpoint is this one, when given)."""
        ...


class SqlPushStore(SqlDomain):
    async def put_push_subscription(self, subscription: PushSubscription) -> None:
        s = subscription
        args = (s.account_id, s.device_id, s.provider, s.endpoint, s.p256dh, s.auth, s.created)
        await self._write(lambda: _count(PUSH_PUT, *args))

    async def get_push_subscription(
        self, account_id: str, device_id: int
    ) -> PushSubscription | None:
        def op() -> Op[PushSubscription | None]:
            found = yield row(PUSH_GET, account_id, device_id)
            return None if found is None else PushSubscription(*found)

        return await self._read(op)

    async def delete_push_subscription(
        self, account_id: str, device_id: int, endpoint: str | None = None
    ) -> bool:
        if endpoint is None:
            return await self._write(lambda: _count(PUSH_DELETE, account_id, device_id)) > 0
        sql = PUSH_DELETE_GONE
        return await self._write(lambda: _count(sql, account_id, device_id, endpoint)) > 0


def _count(sql: str, *args: Any) -> Op[int]:
    return int((yield count(sql, *args)))
