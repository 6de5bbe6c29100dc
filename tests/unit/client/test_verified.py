"""The store's verified keys and paused outbox items (porch.client.verified)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from porch.client.store import MIGRATIONS, SCHEMA, LocalStore
from porch.client.verified import Verification
from porch.crypto.at_rest import Sealer

PEER = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
OTHER = "11111111-2222-4333-8444-555555555555"
KEY_A, KEY_B = "A" * 43 + "=", "B" * 43 + "="


def test_verification_is_keyed_on_the_master_key_verified(store: LocalStore) -> None:
    assert store.verification(PEER) is Verification.UNVERIFIED  # not even a contact
    store.set_contact(PEER, master_key=KEY_A)
    assert store.verification(PEER) is Verification.UNVERIFIED
    store.set_verified_key(PEER, KEY_A)
    assert store.verified_key(PEER) == KEY_A
    assert store.verification(PEER) is Verification.VERIFIED
    store.set_contact(PEER, master_key=KEY_B)  # the pin moves (porch.client.core.keys)
    assert store.verification(PEER) is Verification.KEY_CHANGED
    assert store.verification(OTHER) is Verification.UNVERIFIED
    store.set_verified_key(PEER, None)
    assert store.verification(PEER) is Verification.UNVERIFIED
    store.set_contact(PEER, username="bob")  # other contact columns leave it alone
    store.set_verified_key(PEER, KEY_B)
    store.set_contact(PEER, phone="+14155550100")
    assert store.verification(PEER) is Verification.VERIFIED


def test_paused_items_wait_and_resume_in_order_after_the_cursor(store: LocalStore) -> None:
    for i in range(3):
        store.enqueue(f"p{i}", PEER, b"text", False, i)
    store.enqueue("o", OTHER, b"text", False, 9)
    cursor = max(i.seq for i in store.pending(0, 10))  # an owner sent them all once
    assert store.pause("p0", "changed") and store.pause("p2", "changed")
    assert not store.pause("p0", "again")  # only a queued item pauses
    assert store.outbox_state("p0") == ("paused", "identity_changed", "changed")
    assert [i.client_id for i in store.pending(0, 10)] == ["p1", "o"]
    assert store.outbox_size() == 2  # nothing to wait for in a flush
    assert store.paused_count(PEER) == 2 and store.paused_count(OTHER) == 0
    assert store.resume(OTHER) == 0
    assert store.resume(PEER) == 2
    # After the owner's cursor, in their old order, queued again.
    assert [i.client_id for i in store.pending(cursor, 10)] == ["p0", "p2"]
    assert store.outbox_state("p2") == ("queued", None, None)
    assert store.resume(PEER) == 0
    assert [e.state for e in store.outbox_entries()] == ["queued"] * 4


def test_a_profile_before_verification_is_migrated(tmp_path: Path, key: bytes) -> None:
    db = sqlite3.connect(tmp_path / "client.db")
    for statement in SCHEMA:
        db.execute(statement)
    for statements in MIGRATIONS[:1]:  # the version before verified keys
        for statement in statements:
            db.execute(statement)
    db.execute("PRAGMA user_version=1")
    db.execute("INSERT INTO contacts (account_id, master_key) VALUES (?, ?)", (PEER, KEY_A))
    db.commit()
    db.close()
    store = LocalStore(tmp_path / "client.db", Sealer(key))
    try:
        assert store.verification(PEER) is Verification.UNVERIFIED
        store.set_verified_key(PEER, KEY_A)
        assert store.verification(PEER) is Verification.VERIFIED
        assert store.contact_master_key(PEER) == KEY_A
    finally:
        store.close()
    reopened = LocalStore(tmp_path / "client.db", Sealer(key))  # migrates nothing twice
    try:
        assert reopened.verification(PEER) is Verification.VERIFIED
    finally:
        reopened.close()
