"""The outbox queue (porch.client.outbox_store): a disappearing message's ttl is kept with its
row, bounded, and what is left of it is counted from when it was queued (spec §7)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from porch.client.outbox_store import OutboxItem
from porch.client.store import MIGRATIONS, SCHEMA, LocalStore
from porch.crypto.at_rest import Sealer
from porch.protocol.fields import MAX_TTL_SECONDS

PEER = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
NOW = 1_700_000_000_000


def test_the_ttl_and_creation_time_come_back_with_the_item(store: LocalStore) -> None:
    store.enqueue("a", PEER, b"one", False, NOW, ttl=30)
    store.enqueue("b", PEER, b"two", False, NOW + 1)
    a, b = store.pending(0, 10)
    assert (a.client_id, a.content, a.ttl, a.created) == ("a", b"one", 30, NOW)
    assert (b.client_id, b.ttl, b.created) == ("b", None, NOW + 1)


@pytest.mark.parametrize("ttl", [0, -5, MAX_TTL_SECONDS + 1])
def test_a_ttl_out_of_range_is_refused_and_nothing_is_queued(store: LocalStore, ttl: int) -> None:
    with pytest.raises(ValueError, match="ttl must be"):
        store.enqueue("x", PEER, b"c", False, NOW, ttl=ttl)
    assert store.outbox_size() == 0


@pytest.mark.parametrize(
    ("waited_ms", "left"),
    [(0, 60), (1, 60), (999, 60), (1_000, 59), (59_001, 1), (59_999, 1), (60_000, 0), (10**9, 0)],
)
def test_ttl_left_rounds_up_and_reaches_zero_when_the_timer_ran_out(
    waited_ms: int, left: int
) -> None:
    item = OutboxItem(1, "c", PEER, b"", False, ttl=60, created=NOW)
    assert item.ttl_left(NOW + waited_ms) == left


def test_ttl_left_is_none_without_a_ttl_and_never_above_it() -> None:
    assert OutboxItem(1, "c", PEER, b"", False, created=NOW).ttl_left(NOW + 10**12) is None
    assert OutboxItem(1, "c", PEER, b"", False, ttl=5, created=NOW).ttl_left(NOW - 10**6) == 5


def test_a_profile_from_before_ttl_is_migrated(tmp_path: Path, key: bytes) -> None:
    version = next(
        i for i, m in enumerate(MIGRATIONS) if any("outbox ADD COLUMN ttl" in s for s in m)
    )
    db = sqlite3.connect(tmp_path / "client.db")
    for statement in SCHEMA + [s for m in MIGRATIONS[:version] for s in m]:
        db.execute(statement)
    db.execute(f"PRAGMA user_version={version}")
    sealed = Sealer(key).seal(b"old", aad=b"outbox:old")
    db.execute(
        "INSERT INTO outbox (client_id, recipient, content, ephemeral, created)"
        " VALUES ('old', ?, ?, 0, ?)",
        (PEER, sealed, NOW),
    )
    db.commit()
    db.close()
    store = LocalStore(tmp_path / "client.db", Sealer(key))
    try:
        [item] = store.pending(0, 10)
        assert (item.client_id, item.content, item.ttl, item.created) == ("old", b"old", None, NOW)
        store.enqueue("new", PEER, b"new", False, NOW, ttl=1)
        assert [i.ttl for i in store.pending(0, 10)] == [None, 1]
    finally:
        store.close()
