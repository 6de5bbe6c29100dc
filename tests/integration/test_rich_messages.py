"""Rich messages end to end over a real server (issue 8): replies, reactions, edits, deletes,
forwards and disappearing timers, 1:1 and in a group, on a linked second device of the sender
and of the receiver, and the hostile cases the receivers refuse.

The server only relays ciphertext here, so the store backend does not matter: SQLite only."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from porch.client import Client
from porch.client.errors import UsageError
from porch.client.history import HistoryMessage
from porch.crypto.content import Delete, Edit, Text
from tests.integration.server import ServerProcess
from tests.integration.test_linking import link_second
from tests.integration.test_profiles import porch

pytestmark = pytest.mark.parametrize("server_env", ["sqlite"], indirect=True)

DAY_MS = 86_400_000
PHOTO_LINE = "[photo 1024\u00d7768]"


async def until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def find(client: Client, peer: str, client_id: str) -> HistoryMessage | None:
    return next((m for m in client.history(peer) if m.client_id == client_id), None)


def texts(client: Client, peer: str) -> list[str]:
    return [m.text for m in client.history(peer) if m.status != "notice"]


async def test_one_to_one_on_every_linked_device(
    server: ServerProcess, register_client, tmp_path: Path
) -> None:
    a1, b1, carol = await register_client(), await register_client(), await register_client()
    async with a1, b1, carol:
        a2 = await link_second(server, a1, tmp_path / "a2")
        b2 = await link_second(server, b1, tmp_path / "b2")
        async with a2, b2:
            alice, bob = a1.account_id, b1.account_id
            sent = await a1.send_text(bob, "lunch?")
            mid = sent.id
            # Each of bob's devices has alice's message; a2 has the sent copy.
            await until(
                lambda: find(b1, alice, mid) and find(b2, alice, mid) and find(a2, bob, mid),
                "the text",
            )

            # A reply quotes it, on all four devices.
            reply = await b1.reply(alice, mid, "yes, at noon")
            for device, peer in ((a1, bob), (a2, bob), (b2, alice)):
                await until(lambda d=device, p=peer: find(d, p, reply.id) is not None, "reply")
                got = find(device, peer, reply.id)
                assert got is not None and got.reply is not None
                assert (got.reply.id, got.reply.author, got.reply.body) == (mid, alice, "lunch?")

            # Reactions: added, changed, removed; one per reactor, everywhere.
            await b1.react(alice, mid, "👍")
            await until(lambda: find(a1, bob, mid).reactions == ((bob, "👍"),), "reaction")  # type: ignore[union-attr]
            await b1.react(alice, mid, "❤️")
            for device, peer in ((a1, bob), (a2, bob), (b1, alice), (b2, alice)):
                await until(
                    lambda d=device, p=peer: find(d, p, mid).reactions == ((bob, "❤️"),),  # type: ignore[union-attr]
                    "changed reaction",
                )
            await b2.react(alice, mid, "")  # removed from bob's other device
            await until(lambda: find(a1, bob, mid).reactions == (), "removed reaction")  # type: ignore[union-attr]
            await until(lambda: find(b1, alice, mid).reactions == (), "removed on b1")  # type: ignore[union-attr]

            # An edit shows at once on the sender, then everywhere, history kept.
            await a1.edit(bob, mid, "lunch at 1?")
            assert find(a1, bob, mid).edited  # type: ignore[union-attr]
            for device, peer in ((a2, bob), (b1, alice), (b2, alice)):
                await until(lambda d=device, p=peer: find(d, p, mid).text == "lunch at 1?", "edit")  # type: ignore[union-attr]
                m = find(device, peer, mid)
                assert m is not None and m.edited and [b for _, b in m.edits] == ["lunch?"]

            # Forward to two chats: marked forwarded, same body.
            forwards = await b1.forward(alice, mid, [carol.account_id, alice])
            assert len(forwards) == 2
            await until(lambda: find(carol, bob, forwards[0].id) is not None, "forward")
            fwd = find(carol, bob, forwards[0].id)
            assert fwd is not None and fwd.forwarded and fwd.text == "lunch at 1?"
            with pytest.raises(UsageError) as limit:
                await b1.forward(alice, mid, [carol.account_id] * 6)
            assert limit.value.code == "forward_limit"

            # Hostile: bob cannot edit or delete alice's message, through the SDK or by hand.
            with pytest.raises(UsageError) as info:
                await b1.edit(alice, mid, "forged")
            assert info.value.code == "not_author"
            await b1.send_content(alice, Edit(mid, "forged by hand", int(time.time() * 1000)))
            await b1.send_content(alice, Delete(mid, int(time.time() * 1000)))
            marker = await b1.send_text(alice, "marker")
            await until(lambda: find(a1, bob, marker.id) is not None, "marker")
            assert find(a1, bob, mid).text == "lunch at 1?"  # type: ignore[union-attr]
            assert not find(a1, bob, mid).deleted  # type: ignore[union-attr]
            with pytest.raises(UsageError) as unknown:
                await b1.react(alice, "no-such-id", "👍")
            assert unknown.value.code == "message_not_found"

            # Delete for everyone: a marker on every device.
            await a1.delete(bob, mid)
            assert find(a1, bob, mid).deleted  # type: ignore[union-attr]
            for device, peer in ((a2, bob), (b1, alice), (b2, alice)):
                await until(lambda d=device, p=peer: find(d, p, mid).deleted, "delete")  # type: ignore[union-attr]
                m = find(device, peer, mid)
                assert m is not None and m.text == "" and m.edits == ()


async def test_the_receivers_window_counts_from_the_servers_time(
    server: ServerProcess, register_client
) -> None:
    """The SDK refuses to delete a message its own copy dates two days back; forced past it,
    the receiver judges by when the server stored the text and the delete (task M2, item 4):
    a backdated text is not protected by its claimed ts, nor refused for it."""
    alice, bob = await register_client(), await register_client()
    async with alice, bob:
        now = int(time.time() * 1000)
        old = Text("old-one", "from two days ago", now - 2 * DAY_MS - 1000)
        await alice.send_content(bob.account_id, old)
        await until(lambda: find(bob, alice.account_id, "old-one") is not None, "old text")
        # The sender's copy took the server's time on its ack: date it back as the text is.
        alice._store._db.execute(
            "UPDATE messages SET ts = ? WHERE client_id = 'old-one'", (old.ts,)
        )
        with pytest.raises(UsageError) as info:
            await alice.delete(bob.account_id, "old-one")
        assert info.value.code == "too_late" and "2 days" in str(info.value)
        # Forced past the SDK, dated one second after the text: the server stored both now.
        await alice.send_content(bob.account_id, Delete("old-one", old.ts + 1000))
        marker = await alice.send_text(bob.account_id, "marker")
        await until(lambda: find(bob, alice.account_id, marker.id) is not None, "marker")
        assert find(bob, alice.account_id, "old-one").deleted  # type: ignore[union-attr]


async def test_disappearing_messages_go_from_every_device(
    server: ServerProcess, register_client, tmp_path: Path
) -> None:
    a1, b1 = await register_client(), await register_client()
    async with a1, b1:
        b2 = await link_second(server, b1, tmp_path / "b2")
        async with b2:
            alice, bob = a1.account_id, b1.account_id
            await a1.set_timer(bob, 2)
            assert a1.timer_of(bob) == 2
            await until(lambda: b1.timer_of(alice) == 2 and b2.timer_of(alice) == 2, "timer")
            notices = [m.text for m in b1.history(alice) if m.status == "notice"]
            assert notices[-1].endswith("set disappearing messages to 2 seconds")
            sent = await a1.send_text(bob, "this will self-destruct")
            reply = await b2.send_text(alice, "so will this")  # the timer applies both ways
            await until(lambda: find(b1, alice, sent.id) is not None, "text on b1")
            await until(lambda: find(a1, bob, reply.id) is not None, "reply on a1")
            m = find(b1, alice, sent.id)
            assert m is not None and m.expires_at is not None
            assert m.expires_at == find(a1, bob, sent.id).expires_at  # type: ignore[union-attr]
            await asyncio.sleep(max(0, (m.expires_at - time.time() * 1000) / 1000) + 0.2)
            for device, peer in ((a1, bob), (b1, alice), (b2, alice)):
                device.expire_now()  # (or the 30 s sweep did already)
                assert "this will self-destruct" not in texts(device, peer)
                assert "so will this" not in texts(device, peer)
            await a1.set_timer(bob, 0)
            await until(lambda: b1.timer_of(alice) == 0, "timer off")
            later = await a1.send_text(bob, "this one stays")
            await until(lambda: find(b1, alice, later.id) is not None, "kept text")
            assert find(b1, alice, later.id).expires_at is None  # type: ignore[union-attr]


async def test_group_reply_react_edit_delete_and_timer(
    server: ServerProcess, register_client
) -> None:
    a1, b1 = await register_client(), await register_client()
    async with a1, b1:
        info = await a1.groups.create("Rich", [b1.account_id])
        peer = "g:" + info.id

        def ready() -> bool:
            g = b1._store.get_group(info.id)
            return g is not None and g.state is not None

        await until(ready, "the group on b1")
        sent = await a1.send_content(peer, a1.new_text(peer, "group hello"))
        await until(lambda: find(b1, peer, sent.id) is not None, "group text")
        reply = await b1.reply(peer, sent.id, "hi all")
        await until(lambda: find(a1, peer, reply.id) is not None, "group reply")
        assert find(a1, peer, reply.id).reply.author == a1.account_id  # type: ignore[union-attr]
        await b1.react(peer, sent.id, "🎉")
        await until(
            lambda: find(a1, peer, sent.id).reactions == ((b1.account_id, "🎉"),),  # type: ignore[union-attr]
            "group reaction",
        )
        with pytest.raises(UsageError):
            await b1.edit(peer, sent.id, "not mine")
        await a1.edit(peer, sent.id, "group hello (edited)")
        await until(lambda: find(b1, peer, sent.id).edited, "group edit")  # type: ignore[union-attr]
        await a1.delete(peer, sent.id)
        await until(lambda: find(b1, peer, sent.id).deleted, "group delete")  # type: ignore[union-attr]

        assert await a1.set_timer(peer, 3600) is None
        mine = [m.text for m in a1.history(peer) if m.status == "notice"]
        assert "You set disappearing messages to 1 hour" in mine
        await until(lambda: b1.timer_of(peer) == 3600, "group timer")
        later = await b1.send_content(peer, b1.new_text(peer, "with the timer"))
        await until(lambda: find(a1, peer, later.id) is not None, "timed group text")
        got = find(a1, peer, later.id)
        assert got is not None and got.expires_at is not None
        notices = [m.text for m in b1.history(peer) if m.status == "notice"]
        assert any("set disappearing messages to 1 hour" in n for n in notices)


async def test_the_rich_commands_end_to_end(register_client) -> None:  # type: ignore[no-untyped-def]
    alice = await register_client(username="alice_r")
    bob = await register_client(username="bob_r")
    carol = await register_client(username="carol_r")
    async with alice:
        hello = await alice.send_text("@bob_r", "hello from alice")
    ap, bp, cp = alice.profile_dir, bob.profile_dir, carol.profile_dir

    async def run(profile: Path, *args: str, code: int = 0) -> tuple[str, str]:
        got, out, err = await porch(profile, *args)
        assert got == code, (args, got, out, err)
        assert "Traceback" not in err
        return out, err

    await run(bp, "recv", "--wait", "1")
    await run(bp, "react", "@alice_r", "last", "👍")
    await run(bp, "reply", "@alice_r", hello.id[:8], "hi", "alice")
    out, _ = await run(ap, "recv", "--wait", "1")
    assert "* @bob_r reacted 👍 to \u201chello from alice\u201d" in out, out
    out, _ = await run(ap, "history", "@bob_r")
    assert "👍 @bob_r" in out and "> me: hello from alice" in out, out
    await run(ap, "edit", "@bob_r", "-2", "hello, edited")
    _, err = await run(ap, "edit", "@bob_r", "last", "not mine", code=2)
    assert err.strip().splitlines()[-1].startswith("porch: you can only edit your own messages")
    _, err = await run(ap, "timer", "@bob_r", "10x", code=2)
    assert "give 30s, 5m, 1h, 1d or 1w" in err
    out, _ = await run(ap, "timer", "@bob_r", "1d")
    assert "Disappearing messages set to 1 day." in out
    _, err = await run(bp, "react", "@alice_r", "nosuchid", "👍", code=2)
    assert "no message 'nosuchid'" in err
    out, _ = await run(bp, "recv", "--wait", "1")
    edited = "* @alice_r edited \u201chello from alice\u201d \u2192 \u201chello, edited\u201d"
    assert edited in out, out
    out, _ = await run(bp, "history", "@alice_r")
    assert "Disappearing messages: 1 day" in out and "hello, edited (edited)" in out, out
    await run(bp, "forward", "@alice_r", hello.id, "@carol_r")
    await run(ap, "delete", "@bob_r", hello.id)
    out, _ = await run(bp, "recv", "--wait", "1", "--json")
    deletes = [r for r in map(json.loads, out.splitlines()) if r.get("type") == "delete"]
    assert deletes == [
        {"type": "delete", "from": alice.account_id, "author": alice.account_id,
         "peer": alice.account_id, "group": None, "id": hello.id,
         "text": "@alice_r deleted a message"}
    ], out  # fmt: skip
    out, _ = await run(bp, "history", "@alice_r", "--json")
    records = {r["id"]: r for r in map(json.loads, out.splitlines())}
    assert records[hello.id]["deleted"] and records[hello.id]["text"] == ""
    await run(cp, "recv", "--wait", "1")
    out, _ = await run(cp, "history", "@bob_r")
    assert "hello, edited (forwarded)" in out, out
    _, err = await run(bp, "forward", "@alice_r", "last", *["@carol_r"] * 6, code=2)
    assert "at most 5 chats" in err


async def test_the_chat_shows_and_does_rich_messages(register_client) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import Input, Static

    from porch.crypto.rich import Attachment
    from porch.tui import ChatApp
    from tests.integration.test_chat_tui import eventually, line_with

    alice = await register_client(username="alice_t")
    bob = await register_client(username="bob_t")
    async with alice, bob:
        first = await bob.send_text(alice.account_id, "hi alice")
        await until(lambda: find(alice, bob.account_id, first.id) is not None, "first text")
        app = ChatApp(alice, open_to=bob.account_id)
        async with app.run_test(size=(120, 40)) as pilot:
            await eventually(lambda: bool(line_with(app, "hi alice")), pilot.pause)
            composer = app.query_one("#composer", Input)

            async def command(text: str) -> None:
                composer.value = text
                await pilot.press("enter")
                await pilot.pause()

            await command("/react 👍")
            await until(
                lambda: (
                    find(bob, alice.account_id, first.id).reactions  # type: ignore[union-attr]
                    == ((alice.account_id, "👍"),)
                ),
                "the reaction on bob's side",
            )
            await eventually(lambda: "👍" in "\n".join(app.history_lines), pilot.pause)
            await command("/reply sure thing")
            await eventually(lambda: bool(line_with(app, "┆ ")), pilot.pause)
            assert "hi alice" in line_with(app, "┆ ")
            await bob.edit(alice.account_id, first.id, "hi alice, edited")
            await eventually(lambda: bool(line_with(app, "hi alice, edited (edited)")), pilot.pause)
            key, digest = bytes(64), bytes(32)
            photo = Attachment("AAECAwQFBgcICQoLDA0ODw", key, digest, 2048, "image/jpeg",
                               name="cat.jpg", width=1024, height=768)  # fmt: skip
            doc = Attachment("EBESExQVFhcYGRobHB0eHw", key, digest, 1500, "application/pdf",
                             name="notes.pdf")  # fmt: skip
            text = bob.new_text(alice.account_id, "files", attachments=(photo, doc))
            await bob.send_content(alice.account_id, text)
            await eventually(lambda: bool(line_with(app, PHOTO_LINE)), pilot.pause)
            assert "📎 notes.pdf (1.5 kB)" in line_with(app, PHOTO_LINE)
            await bob.delete(alice.account_id, first.id)
            await eventually(lambda: bool(line_with(app, "This message was deleted")), pilot.pause)
            await command("/timer 1h")
            await eventually(
                lambda: "⏱ 1 hour" in str(app.query_one("#peer-title", Static).render()),
                pilot.pause,
            )
            await command("/edit nope")  # alice's latest own message is the reply: edited
            await until(
                lambda: any(m.text == "nope" for m in bob.history(alice.account_id)), "edit"
            )
            assert app.is_running
