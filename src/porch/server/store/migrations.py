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
    (
        3,
        "registration sessions, per-number code schedule",
        [
            # A pending code now belongs to a session, not to the number (docs/security.md,
            # "Verification codes"): codes pending at upgrade time are void.
            "DROP TABLE verifications",
            """CREATE TABLE registration_sessions (
                id_hash BYTEA PRIMARY KEY,
                phone TEXT NOT NULL,
                code_hash BYTEA,
                attempts INTEGER NOT NULL DEFAULT 0,
                expires BIGINT NOT NULL
            )""",
            "CREATE INDEX registration_sessions_phone ON registration_sessions (phone)",
            "CREATE INDEX registration_sessions_expiry ON registration_sessions (expires)",
            """CREATE TABLE registration_numbers (
                phone TEXT PRIMARY KEY,
                sends INTEGER NOT NULL,
                next_code BIGINT NOT NULL,
                expires BIGINT NOT NULL
            )""",
            "CREATE INDEX registration_numbers_expiry ON registration_numbers (expires)",
        ],
    ),
    (
        4,
        "a device identity key belongs to one device",
        [
            # Clones uploaded before this check lose their keys (the earliest device keeps
            # them), so that the unique indexes can be built; such a device must register again.
            """UPDATE devices SET curve25519 = NULL, ed25519 = NULL, signature = NULL
            WHERE EXISTS (SELECT 1 FROM devices d
                WHERE (d.curve25519 = devices.curve25519 OR d.ed25519 = devices.ed25519)
                AND (d.created < devices.created OR (d.created = devices.created
                    AND (d.account_id < devices.account_id OR (d.account_id = devices.account_id
                        AND d.device_id < devices.device_id)))))""",
            """DELETE FROM one_time_keys WHERE EXISTS (SELECT 1 FROM devices d
                WHERE d.account_id = one_time_keys.account_id
                AND d.device_id = one_time_keys.device_id AND d.curve25519 IS NULL)""",
            """DELETE FROM fallback_keys WHERE EXISTS (SELECT 1 FROM devices d
                WHERE d.account_id = fallback_keys.account_id
                AND d.device_id = fallback_keys.device_id AND d.curve25519 IS NULL)""",
            "CREATE UNIQUE INDEX devices_curve25519 ON devices (curve25519)",
            "CREATE UNIQUE INDEX devices_ed25519 ON devices (ed25519)",
        ],
    ),
    (
        5,
        "multi-destination sends: a shared ciphertext stored once",
        [
            # One row per shared ciphertext (Megolm); the envelopes of its devices point at it
            # with body '' (spec A). Deleted with its last envelope (store/payloads.py).
            """CREATE TABLE payloads (
                id BIGSERIAL_PK,
                kind SMALLINT NOT NULL,
                body TEXT NOT NULL,
                expires BIGINT NOT NULL
            )""",
            "CREATE INDEX payloads_expiry ON payloads (expires)",
            "ALTER TABLE envelopes ADD COLUMN payload_id BIGINT",
            # Partial: 1:1 envelopes (no payload) cost the index nothing.
            "CREATE INDEX envelopes_payload ON envelopes (payload_id) WHERE payload_id IS NOT NULL",
        ],
    ),
    (
        6,
        "groups: members with roles, join requests, invite token hash",
        [
            # Exactly what docs/security.md lists for groups (spec B): the state is a sealed
            # blob the server cannot read; the invite token is kept as its SHA-256 only.
            # state_revision is the revision the blob was stored under, which its sealing
            # binds (docs/protocol.md, "Sealed group state"): other changes move `revision`.
            """CREATE TABLE groups (
                id TEXT PRIMARY KEY,
                revision BIGINT NOT NULL,
                state BYTEA NOT NULL,
                state_revision BIGINT NOT NULL,
                members_can_edit INTEGER NOT NULL,
                join_approval INTEGER NOT NULL,
                invite_hash BYTEA
            )""",
            "CREATE UNIQUE INDEX groups_invite ON groups (invite_hash)",
            # `since` is the revision that added the member: it orders members by how long
            # they have been in (the last admin's successor) without storing any time.
            """CREATE TABLE group_members (
                group_id TEXT NOT NULL,
                account_id TEXT NOT NULL,
                role TEXT NOT NULL,
                since BIGINT NOT NULL,
                PRIMARY KEY (group_id, account_id)
            )""",
            "CREATE INDEX group_members_account ON group_members (account_id, group_id)",
            """CREATE TABLE group_requests (
                group_id TEXT NOT NULL,
                account_id TEXT NOT NULL,
                since BIGINT NOT NULL,
                PRIMARY KEY (group_id, account_id)
            )""",
        ],
    ),
    (
        7,
        "linked devices: provisioning channels and codes, signed device lists",
        [
            # Keyed by the SHA-256 of the channel id; the body is the provisioning ciphertext,
            # deleted when it is read or after ten minutes (docs/security.md).
            """CREATE TABLE provisioning_channels (
                id_hash BYTEA PRIMARY KEY,
                body TEXT,
                expires BIGINT NOT NULL
            )""",
            "CREATE INDEX provisioning_channels_expiry ON provisioning_channels (expires)",
            """CREATE TABLE provisioning_codes (
                code_hash BYTEA PRIMARY KEY,
                account_id TEXT NOT NULL,
                expires BIGINT NOT NULL
            )""",
            "CREATE INDEX provisioning_codes_expiry ON provisioning_codes (expires)",
            """CREATE TABLE device_lists (
                account_id TEXT PRIMARY KEY,
                version BIGINT NOT NULL,
                list BYTEA NOT NULL,
                signature BYTEA NOT NULL
            )""",
            # The listed device ids, so that the send check is one indexed query.
            """CREATE TABLE device_list_entries (
                account_id TEXT NOT NULL,
                device_id INTEGER NOT NULL,
                PRIMARY KEY (account_id, device_id)
            )""",
            # The highest device id the account ever had: a linked device gets the next one,
            # so a removed device's id (and its contacts' sessions with it) never come back.
            """CREATE TABLE device_counters (
                account_id TEXT PRIMARY KEY,
                last_device_id INTEGER NOT NULL
            )""",
        ],
    ),
    (
        8,
        "media: upload slots and blobs, their downloads",
        [
            # What docs/security.md lists for media: sizes, the uploading account and device,
            # times, how many devices will download it and which did. Never a key or a name.
            # `upload` is the backend's handle (the S3 UploadId; '' on the filesystem).
            # `expires` is the slot's end while uploading, the blob's once complete.
            """CREATE TABLE media (
                id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL,
                device_id INTEGER NOT NULL,
                size BIGINT NOT NULL,
                part_size BIGINT NOT NULL,
                upload TEXT NOT NULL,
                state TEXT NOT NULL,
                created BIGINT NOT NULL,
                expires BIGINT NOT NULL,
                recipients INTEGER,
                downloads INTEGER NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX media_account ON media (account_id, created)",
            "CREATE INDEX media_expiry ON media (expires)",
            """CREATE TABLE media_downloads (
                media_id TEXT NOT NULL,
                account_id TEXT NOT NULL,
                device_id INTEGER NOT NULL,
                PRIMARY KEY (media_id, account_id, device_id)
            )""",
        ],
    ),
    (
        9,
        "push subscriptions, one per device",
        [
            # What docs/security.md lists for push: the device's push service endpoint (a
            # capability URL), the browser's p256dh and auth keys, when it was stored.
            """CREATE TABLE push_subscriptions (
                account_id TEXT NOT NULL,
                device_id INTEGER NOT NULL,
                provider TEXT NOT NULL,
                endpoint TEXT NOT NULL,
                p256dh TEXT NOT NULL,
                auth TEXT NOT NULL,
                created BIGINT NOT NULL,
                PRIMARY KEY (account_id, device_id)
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
