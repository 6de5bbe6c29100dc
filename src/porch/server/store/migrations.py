"""Numbered schema migrations, applied in order at start-up.

Plain, portable SQL (SQLite and PostgreSQL share it): each entry runs once, in one
transaction, and bumps schema_version. Never edit a released migration; add the next one.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "accounts, devices, keys, verifications, envelopes, blocks",
        [
            """CREATE TABLE accounts (
                id TEXT PRIMARY KEY,
                phone TEXT NOT NULL UNIQUE,
                username TEXT UNIQUE,
                discoverable INTEGER NOT NULL DEFAULT 1,
                master_key TEXT,
                created BIGINT NOT NULL
            )""",
            """CREATE TABLE devices (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                device_id INTEGER NOT NULL,
                registration_id BIGINT NOT NULL,
                name TEXT NOT NULL DEFAULT '',
                password_hash BYTEA NOT NULL,
                curve25519 TEXT,
                ed25519 TEXT,
                signature TEXT,
                created BIGINT NOT NULL,
                last_seen_day BIGINT NOT NULL,
                PRIMARY KEY (account_id, device_id)
            )""",
            """CREATE TABLE one_time_keys (
                account_id TEXT NOT NULL,
                device_id INTEGER NOT NULL,
                key_id TEXT NOT NULL,
                curve25519 TEXT NOT NULL,
                signature TEXT NOT NULL,
                PRIMARY KEY (account_id, device_id, key_id)
            )""",
            """CREATE TABLE fallback_keys (
                account_id TEXT NOT NULL,
                device_id INTEGER NOT NULL,
                key_id TEXT NOT NULL,
                curve25519 TEXT NOT NULL,
                signature TEXT NOT NULL,
                PRIMARY KEY (account_id, device_id)
            )""",
            """CREATE TABLE verifications (
                phone TEXT PRIMARY KEY,
                code_hash BYTEA,
                expires BIGINT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0
            )""",
            """CREATE TABLE envelopes (
                id BIGSERIAL_PK,
                account_id TEXT NOT NULL,
                device_id INTEGER NOT NULL,
                sender_account TEXT NOT NULL,
                sender_device INTEGER NOT NULL,
                ts BIGINT NOT NULL,
                kind SMALLINT NOT NULL,
                body TEXT NOT NULL,
                expires BIGINT NOT NULL
            )""",
            "CREATE INDEX envelopes_queue ON envelopes (account_id, device_id, id)",
            "CREATE INDEX envelopes_expiry ON envelopes (expires)",
            """CREATE TABLE sent_messages (
                sender_account TEXT NOT NULL,
                sender_device INTEGER NOT NULL,
                client_id TEXT NOT NULL,
                ts BIGINT NOT NULL,
                expires BIGINT NOT NULL,
                PRIMARY KEY (sender_account, sender_device, client_id)
            )""",
            "CREATE INDEX sent_messages_expiry ON sent_messages (expires)",
            """CREATE TABLE blocks (
                account_id TEXT NOT NULL,
                blocked_id TEXT NOT NULL,
                PRIMARY KEY (account_id, blocked_id)
            )""",
        ],
    ),
    (
        2,
        "server secrets shared by every node",
        [
            """CREATE TABLE server_secrets (
                name TEXT PRIMARY KEY,
                value BYTEA NOT NULL
            )""",
        ],
    ),
]

# Dialect differences are confined to these two spellings.
SQLITE_TYPES = {"BIGSERIAL_PK": "INTEGER PRIMARY KEY AUTOINCREMENT", "BYTEA": "BLOB"}
POSTGRES_TYPES = {"BIGSERIAL_PK": "BIGSERIAL PRIMARY KEY", "BYTEA": "BYTEA"}


def render(statement: str, types: dict[str, str]) -> str:
    for word, spelling in types.items():
        statement = statement.replace(word, spelling)
    return statement
