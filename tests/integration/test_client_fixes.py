"""Client fixes from the issue-8 new-user and attack test (task M2): each case here failed
before its fix. Real profiles registered on a real server; most cases need no connection."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from porch.client import Client
from porch.client.history import MessageExtra
from porch.crypto.rich import Attachment
from tests.integration.test_profiles import porch

pytestmark = pytest.mark.parametrize("server_env", ["sqlite"], indirect=True)

PEER = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
PHOTO = Attachment(
    id="AAECAwQFBgcICQoLDA0ODw",
    key=bytes(range(64)),
    digest=bytes(32),
    size=34,
    content_type="image/jpeg",
    name="beach.jpg",
)


def _now() -> int:
    return int(time.time() * 1000)


async def test_expired_messages_never_show(register_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bob = await register_client()
    store = bob._store
    past = _now() - 60_000
    assert store.add_message(
        PEER,
        "gone1",
        False,
        1,
        past,
        "self-destructed",
        "received",
        expires_at=past + 1000,
        extra=MessageExtra(attachments=(PHOTO,)),
    )
    assert store.add_message(PEER, "kept1", False, 1, past, "still here", "received")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"plaintext of an expired attachment")
    with store.transaction() as db:
        db.execute(
            "INSERT INTO downloads (media_id, path, peer, client_id, created) VALUES (?,?,?,?,?)",
            (PHOTO.id, str(photo), PEER, "gone1", past),
        )
    # A fresh open of the profile (no connection, no 30 s loop) never shows it...
    code, out, err = await porch(bob.profile_dir, "history", PEER)
    assert code == 0, err
    assert "still here" in out and "self-destructed" not in out
    assert not photo.exists()
    # ...and neither does an SDK read on a Client that was open before it expired.
    later = _now()
    assert store.add_message(
        PEER, "gone2", False, 1, later, "short-lived", "received", expires_at=later + 2000
    )
    reader = Client(bob.profile_dir)
    assert "short-lived" in [m.text for m in reader.history(PEER)]
    time.sleep(2.1)
    assert "short-lived" not in [m.text for m in reader.history(PEER)]
    assert all(c.peer != PEER or c.last_text != "short-lived" for c in reader.conversations())
    assert not [m for m in reader.unshown() if m.client_id == "gone2"]
