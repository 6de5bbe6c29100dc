"""Verification sessions and code schedules: one text per query, for every backend (sql.py)."""

from __future__ import annotations

from collections.abc import Callable

from porch.server.store.base import CodeSlot, RegistrationSession
from porch.server.store.rows import SESSION_COLS, session_from
from porch.server.store.sql import Op, SqlDomain, count, row, value

# The row is created first so that {for_update} has a row to lock: concurrent requests on any
# node queue on it and only one of them gets the slot (SQLite: its single writer does that).
NUMBER_ADD = (
    "INSERT INTO registration_numbers (phone, sends, next_code, expires) VALUES (?, 0, 0, 0)"
    " ON CONFLICT DO NOTHING"
)
NUMBER_GET = (
    "SELECT sends, next_code, expires FROM registration_numbers WHERE phone = ?{for_update}"
)
NUMBER_SET = "UPDATE registration_numbers SET sends = ?, next_code = ?, expires = ? WHERE phone = ?"
SESSION_PUT = (
    "INSERT INTO registration_sessions (" + SESSION_COLS + ") VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (id_hash) DO UPDATE SET phone = excluded.phone,"
    " code_hash = excluded.code_hash, attempts = excluded.attempts, expires = excluded.expires"
)
SESSION_GET = "SELECT " + SESSION_COLS + " FROM registration_sessions WHERE id_hash = ?"
SESSION_ATTEMPT = (
    "UPDATE registration_sessions SET attempts = attempts + 1 WHERE id_hash = ? RETURNING attempts"
)
# Of two concurrent verifies of one good code, the second deletes nothing here.
SESSIONS_CONSUME = (
    "DELETE FROM registration_sessions"
    " WHERE phone = (SELECT phone FROM registration_sessions WHERE id_hash = ?)"
)


class SqlRegistrationStore(SqlDomain):
    async def claim_code_send(
        self, phone: str, now: int, interval_ms: Callable[[int], int], quiet_ms: int
    ) -> CodeSlot:
        def op() -> Op[CodeSlot]:
            yield count(NUMBER_ADD, phone)
            found = yield row(NUMBER_GET, phone)
            sends, next_code, expires = int(found[0]), int(found[1]), int(found[2])
            if now < next_code:
                return CodeSlot(False, sends, next_code)
            sends = 1 if now >= expires else sends + 1
            next_code = now + interval_ms(sends)
            yield count(NUMBER_SET, sends, next_code, next_code + quiet_ms, phone)
            return CodeSlot(True, sends, next_code)

        return await self._write(op)

    async def put_registration_session(self, session: RegistrationSession) -> None:
        v = session
        args = (v.id_hash, v.phone, v.code_hash, v.attempts, v.expires)

        def op() -> Op[None]:
            yield count(SESSION_PUT, *args)

        await self._write(op)

    async def get_registration_session(self, id_hash: bytes) -> RegistrationSession | None:
        def op() -> Op[RegistrationSession | None]:
            return session_from((yield row(SESSION_GET, id_hash)))

        return await self._read(op)

    async def count_session_attempt(self, id_hash: bytes) -> int:
        def op() -> Op[int]:
            attempts = yield value(SESSION_ATTEMPT, id_hash)
            return 0 if attempts is None else int(attempts)

        return await self._write(op)

    async def consume_registration_session(self, id_hash: bytes) -> bool:
        def op() -> Op[bool]:
            return bool((yield count(SESSIONS_CONSUME, id_hash)) > 0)

        return await self._write(op)
