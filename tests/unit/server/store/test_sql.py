"""One query text, two dialects: placeholders and hooks (store/sql.py)."""

from __future__ import annotations

from porch.server.store.keys import ONE_TIME_KEY_TAKE
from porch.server.store.sql import postgres_text, rowcount, sqlite_text


def test_placeholders_are_numbered_for_postgresql() -> None:
    sql = "UPDATE devices SET last_seen_day = ? WHERE account_id = ? AND last_seen_day <> ?"
    assert sqlite_text(sql) == sql
    assert postgres_text(sql) == (
        "UPDATE devices SET last_seen_day = $1 WHERE account_id = $2 AND last_seen_day <> $3"
    )


def test_hooks_lock_rows_on_postgresql_only() -> None:
    assert sqlite_text(ONE_TIME_KEY_TAKE) == (
        "DELETE FROM one_time_keys WHERE rowid = (SELECT rowid FROM one_time_keys"
        " WHERE account_id = ? AND device_id = ? ORDER BY key_id LIMIT 1)"
        " RETURNING key_id, curve25519, signature"
    )
    assert postgres_text(ONE_TIME_KEY_TAKE) == (
        "DELETE FROM one_time_keys WHERE ctid = (SELECT ctid FROM one_time_keys"
        " WHERE account_id = $1 AND device_id = $2 ORDER BY key_id LIMIT 1"
        " FOR UPDATE SKIP LOCKED) RETURNING key_id, curve25519, signature"
    )


def test_rowcount_reads_the_command_status() -> None:
    assert rowcount("DELETE 3") == 3
    assert rowcount("INSERT 0 1") == 1
    assert rowcount("SELECT") == 0
