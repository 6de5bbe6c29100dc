"""Shared payloads: one ciphertext that many envelopes deliver (spec A; docs/design.md,
"Store layout").

An envelope of a shared send has body '' and `payload_id`; reading a queue joins the payload
in. A payload lives as long as an envelope points at it: every path that deletes envelopes
(acknowledge, reject, device or account removal) first notes the payloads of what it deletes
(`candidates`) and then deletes those no envelope points at any more (`drop_orphans`), in the
same transaction. Two nodes deleting a payload's last two envelopes at the same moment (each
sees the other's row, not yet committed) can leave one behind: the sweep (`SWEEP`) removes
those, and every payload past its expiry, so no payload outlives its retention.
"""

from __future__ import annotations

from collections.abc import Iterable

from porch.server.store.sql import Op, count, many

PAYLOAD_ADD = "INSERT INTO payloads (kind, body, expires) VALUES (?, ?, ?)"
# With the id taken ahead (SQLite's batch of sends, sqlite_batch.py).
PAYLOAD_ADD_WITH_ID = "INSERT INTO payloads (id, kind, body, expires) VALUES (?, ?, ?, ?)"
# Only one of the candidates, and only if nothing points at it: never a payload in use.
ORPHAN_DELETE = (
    "DELETE FROM payloads WHERE id = ?"
    " AND NOT EXISTS (SELECT 1 FROM envelopes WHERE payload_id = ?)"
)
SWEEP = (
    "DELETE FROM payloads WHERE expires <= ?"
    " OR NOT EXISTS (SELECT 1 FROM envelopes WHERE payload_id = payloads.id)"
)
# The payloads a delete is about to release, per scope (the queue index narrows each).
OF_DEVICE_RANGE = (
    "SELECT DISTINCT payload_id FROM envelopes WHERE account_id = ? AND device_id = ?"
    " AND id >= ? AND id <= ? AND payload_id IS NOT NULL"
)
OF_DEVICE = (
    "SELECT DISTINCT payload_id FROM envelopes WHERE account_id = ? AND device_id = ?"
    " AND payload_id IS NOT NULL"
)
OF_ACCOUNT = (
    "SELECT DISTINCT payload_id FROM envelopes WHERE account_id = ? AND payload_id IS NOT NULL"
)


def drop_orphans(candidates: Iterable[int]) -> Op[int]:
    """Delete the candidates no envelope points at; how many went (SQLite; asyncpg: 0)."""
    ids = sorted(set(candidates))
    if not ids:
        return 0
    return int((yield many(ORPHAN_DELETE, [(i, i) for i in ids])) or 0)


def sweep(now: int) -> Op[int]:
    return int((yield count(SWEEP, now)))
