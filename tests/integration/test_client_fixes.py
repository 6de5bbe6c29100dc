"""Client fixes from the issue-8 new-user and attack test (task M2): each case here failed
before its fix. Real profiles registered on a real server; most cases need no connection."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from porch.client import Client
from porch.client.errors import AttachmentRejected
from porch.client.history import MessageExtra
from porch.crypto.rich import Attachment, Quote
from tests.integration.test_profiles import porch
from tests.integration.test_rich_messages import find, until

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


async def test_forged_reply_quotes_are_not_shown_as_the_authors_words(register_client) -> None:  # type: ignore[no-untyped-def]
    alice = await register_client(username="alice_q")
    bob = await register_client(username="bob_q")
    async with alice, bob:
        a, b = alice.account_id, bob.account_id
        lunch = await alice.send_text(b, "lunch?")
        await until(lambda: find(bob, a, lunch.id) is not None, "the text")
        # A real id with a forged body, and a made-up id in alice's name.
        forged = bob.new_text(a, "deal", reply=Quote(lunch.id, a, "I owe Bob $1000"))
        invented = bob.new_text(a, "ok", reply=Quote("made-up-id", a, "I owe Bob $2000"))
        await bob.send_content(a, forged)
        await bob.send_content(a, invented)
        await until(lambda: find(alice, b, invented.id) is not None, "the replies")
        got = find(alice, b, forged.id)
        assert got is not None and got.reply is not None
        assert got.reply_found and got.reply.body == "lunch?"
        other = find(alice, b, invented.id)
        assert other is not None and other.reply is not None and not other.reply_found
    code, out, err = await porch(alice.profile_dir, "recv", "--wait", "1")
    assert code == 0, err
    assert "> me: lunch?" in out and "$1000" not in out, out
    assert "me (original not found; the replier's quote: \u201cI owe Bob $2000\u201d)" in out
    code, out, err = await porch(alice.profile_dir, "history", "@bob_q")
    assert code == 0, err
    lines = out.splitlines()
    assert "$1000" not in out and "> me: lunch?" in out, out
    header = next(i for i, line in enumerate(lines) if ": deal" in line)
    assert lines[header + 1] == "    > me: lunch?"  # under the reply's header
    assert "> me (original not found" in out


async def test_a_reused_media_id_is_verified_anew(register_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await register_client(), await register_client()
    photo = tmp_path / "notes.txt"
    photo.write_bytes(b"the real attachment " * 100)
    async with alice, bob:
        a, b = alice.account_id, bob.account_id
        sent = await alice.send_file(b, photo)
        await until(lambda: find(bob, a, sent.id) is not None, "the file")
        m = find(bob, a, sent.id)
        assert m is not None
        [pointer] = m.attachments
        saved = await bob.download(pointer, peer=a, client_id=m.client_id)
        assert saved.read_bytes() == photo.read_bytes()
        # The same id with another key, digest or size is not that file: it is fetched and
        # verified again, and the server's blob fails that check.
        for forged in (
            replace(pointer, key=bytes(64)),
            replace(pointer, digest=bytes(32)),
            replace(pointer, size=pointer.size - 1),
        ):
            with pytest.raises(AttachmentRejected):
                await bob.download(forged, peer=a, client_id="forged")
        assert await bob.download(pointer, peer=a, client_id=m.client_id) == saved
        # Asked for in another directory (`porch download --dest`): a copy there.
        other = tmp_path / "elsewhere" / "deep"
        copy = await bob.download(pointer, peer=a, client_id=m.client_id, dest_dir=other)
        assert copy.parent == other and copy.read_bytes() == photo.read_bytes()
        assert await bob.download(pointer, peer=a, client_id=m.client_id) == saved


async def test_send_file_with_the_server_down_exits_75(register_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bob = await register_client()
    note = tmp_path / "note.txt"
    note.write_text("hello")
    args = ("send", "--to", PEER, "--file", str(note), "--server", "http://127.0.0.1:9")
    code, _, err = await porch(bob.profile_dir, *args)
    assert code == 75, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("porch: the server is unreachable") and "Traceback" not in err
    assert last.endswith("nothing was sent; try again when it is up")
    assert bob.outbox() == []


def _wav(path: Path, seconds: int) -> Path:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000 * seconds)
    return path


async def test_recv_shows_marks_deletes_and_voice_notes(register_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    alice = await register_client(username="alice_m")
    bob = await register_client(username="bob_m")
    async with alice, bob:
        a, b = alice.account_id, bob.account_id
        hello = await alice.send_text(b, "hello")
        await alice.edit(b, hello.id, "hello, edited")
        bye = await alice.send_text(b, "bye")
        await alice.delete(b, bye.id)
        [fwd] = await alice.forward(b, hello.id, [b])
        await alice.send_file(b, _wav(tmp_path / "memo.wav", 65), voice=True)
        await until(lambda: len([m for m in bob.history(a) if m.attachments]) == 1, "voice")
        await until(lambda: (m := find(bob, a, bye.id)) is not None and m.deleted, "delete")
        await until(lambda: find(bob, a, fwd.id) is not None, "forward")
    code, out, err = await porch(bob.profile_dir, "recv", "--wait", "1")
    assert code == 0, err
    assert "@alice_m: hello, edited (edited)" in out, out
    assert "@alice_m: This message was deleted" in out
    assert "(forwarded)" in out
    assert "voice note, 1:05" in out


async def test_send_file_reports_the_size_it_sent(register_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image, PngImagePlugin

    alice = await register_client()
    bob = await register_client()
    photo = tmp_path / "photo.png"
    meta = PngImagePlugin.PngInfo()
    meta.add_text("Comment", "x" * 300_000)  # metadata the re-encode drops
    Image.new("RGB", (32, 32), (200, 10, 10)).save(photo, pnginfo=meta)
    assert photo.stat().st_size > 300_000
    code, _, err = await porch(alice.profile_dir, "send", "--to", bob.account_id, "--file",
                               str(photo))  # fmt: skip
    assert code == 0, err
    async with alice:
        [m] = [m for m in alice.history(bob.account_id) if m.attachments]
    from porch.client.media_http import human_size

    size = m.attachments[0].size
    assert size < 10_000
    assert f"sent photo.png ({human_size(size)}) as {m.client_id}" in err, err


async def test_a_group_timer_change_is_told_as_one(register_client) -> None:  # type: ignore[no-untyped-def]
    from porch.client import GroupUpdated, TimerChanged

    a1, b1 = await register_client(), await register_client()
    async with a1, b1:
        info = await a1.groups.create("Timers", [b1.account_id])
        peer = "g:" + info.id

        def ready() -> bool:
            g = b1._store.get_group(info.id)
            return g is not None and g.state is not None

        await until(ready, "the group on b1")
        b1.mark_shown(peer=peer)
        await a1.set_timer(peer, 3600)
        seen: list[object] = []
        deadline = time.monotonic() + 20
        while not any(isinstance(e, TimerChanged) for e in seen):
            assert time.monotonic() < deadline, seen
            if (event := await b1.next_event(1.0)) is not None:
                seen.append(event)
        seen += [e async for e in _drain(b1)]
        assert not [e for e in seen if isinstance(e, GroupUpdated) and e.action == "state"]
    code, out, err = await porch(b1.profile_dir, "recv", "--wait", "1")
    assert code == 0, err
    assert "set disappearing messages to 1 hour" in out and "name or description" not in out


async def _drain(client: Client):  # type: ignore[no-untyped-def]
    while (event := await client.next_event(0.5)) is not None:
        yield event


async def test_forward_sends_once_to_each_chat(register_client) -> None:  # type: ignore[no-untyped-def]
    alice = await register_client(username="alice_f")
    bob = await register_client(username="bob_f")
    async with alice, bob:
        b = bob.account_id
        hello = await alice.send_text(b, "hello")
        sent = await alice.forward(b, hello.id, ["@bob_f", b, "@bob_f"])
        assert len(sent) == 1
        forwarded = [m for m in alice.history(b) if m.forwarded]
        assert [m.client_id for m in forwarded] == [sent[0].id]
