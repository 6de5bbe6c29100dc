"""Group messages end to end over a real server (spec A, E): three accounts with two devices
each, a group of the three; every device's messages reach every other device exactly once
(the sender's other device as a sent copy); a removed member cannot read what follows; a
member added later cannot read what came before."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from porch.client import Client, DecryptionFailed, Message
from porch.client.events import Event
from tests.integration.server import ServerProcess
from tests.integration.test_linking import link_second


class Inbox:
    """Every event of one client, collected in the background."""

    def __init__(self, name: str, client: Client) -> None:
        self.name, self.client = name, client
        self.events: list[Event] = []
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for event in self.client.events():
            self.events.append(event)

    def texts(self, group: str) -> list[tuple[str, bool]]:
        return [
            (e.text, e.outgoing) for e in self.events if isinstance(e, Message) and e.group == group
        ]

    def failures(self) -> list[DecryptionFailed]:
        return [e for e in self.events if isinstance(e, DecryptionFailed)]

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def inboxes(clients: dict[str, Client]) -> AsyncIterator[dict[str, Inbox]]:
    boxes = {name: Inbox(name, c) for name, c in clients.items()}
    try:
        yield boxes
    finally:
        for box in boxes.values():
            await box.stop()


async def until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def member(client: Client, group: str, account: str | None = None) -> bool:
    account = account or client.account_id
    return any(m.account_id == account for m in client._store.group_members(group))


async def test_group_messages_reach_every_device_once(
    server: ServerProcess, register_client, tmp_path: Path
) -> None:
    a1, b1, c1 = (await register_client(), await register_client(), await register_client())
    async with a1, b1, c1:
        a2 = await link_second(server, a1, tmp_path / "a2")
        b2 = await link_second(server, b1, tmp_path / "b2")
        c2 = await link_second(server, c1, tmp_path / "c2")
        async with a2, b2, c2:
            clients = {"a1": a1, "a2": a2, "b1": b1, "b2": b2, "c1": c1, "c2": c2}
            async with inboxes(clients) as box:
                info = await a1.groups.create("Hikers", [b1.account_id, c1.account_id])
                gid = info.id
                # Every device hears of the group (group_changed, then a fetch).
                await until(
                    lambda: all(member(c, gid) for c in clients.values()), "the group everywhere"
                )
                # The state opens on every device once the state key has come (Megolm).
                await until(
                    lambda: all(
                        (g := c._store.get_group(gid)) is not None
                        and g.state is not None
                        and g.state.name == "Hikers"
                        for c in clients.values()
                    ),
                    "the group's name everywhere",
                )
                for name, client in clients.items():
                    sent = client.groups.send_text(gid, f"from {name}")
                    await client.wait_sent(sent)
                for name in clients:
                    others = {f"from {o}" for o in clients if o != name}
                    await until(
                        lambda name=name, others=others: (
                            {t for t, _ in box[name].texts(gid)} == others
                        ),
                        f"every text on {name}",
                    )
                await asyncio.sleep(1)  # anything sent twice would have come by now
                for name in clients:
                    texts = box[name].texts(gid)
                    assert len(texts) == 5, (name, texts)  # each exactly once
                    sibling = {"1": "2", "2": "1"}[name[1]]
                    # The sender's other device got it as a sent copy (outgoing).
                    assert (f"from {name[0]}{sibling}", True) in texts
                    assert sum(outgoing for _, outgoing in texts) == 1
                    assert not box[name].failures(), (name, box[name].failures())
                history = b2.history(f"g:{gid}")
                authors = {m.text: m.author for m in history if m.text.startswith("from ")}
                assert authors["from a1"] == a1.account_id
                assert authors["from b1"] == b1.account_id  # b's own, stored as outgoing

                # A removed member's devices cannot read what is sent after the removal.
                await a1.groups.remove(gid, c1.account_id)
                for name in ("a2", "b1", "b2"):
                    await until(
                        lambda name=name: not member(clients[name], gid, c1.account_id),
                        f"{name} to see the removal",
                    )
                await until(lambda: not member(c1, gid) and not member(c2, gid), "c to be out")
                sent = b1.groups.send_text(gid, "after removal")
                await b1.wait_sent(sent)
                for name in ("a1", "a2", "b2"):
                    inbox = box[name]
                    await until(
                        lambda inbox=inbox: "after removal" in {t for t, _ in inbox.texts(gid)},
                        f"the text after the removal on {name}",
                    )
                await asyncio.sleep(2)
                for name in ("c1", "c2"):
                    assert "after removal" not in {t for t, _ in box[name].texts(gid)}
                # c's own sends now fail in words, never reach the group.
                failed = c1.groups.send_text(gid, "still here?") if member(c1, gid) else None
                assert failed is None

                # A member added later gets what follows, never what came before.
                d1 = await register_client()
                async with d1, inboxes({"d1": d1}) as late:
                    await a1.groups.add(gid, [d1.account_id])
                    await until(lambda: member(d1, gid), "d1 to hear of the group")
                    sent = a2.groups.send_text(gid, "welcome")
                    await a2.wait_sent(sent)
                    await until(
                        lambda: ("welcome", False) in late["d1"].texts(gid), "d1 to get welcome"
                    )
                    await asyncio.sleep(1)
                    assert {t for t, _ in late["d1"].texts(gid)} == {"welcome"}
                    stored = {m.text for m in d1.history(f"g:{gid}")}
                    assert not {f"from {n}" for n in clients} & stored
                    assert "after removal" not in stored


async def test_a_send_reaches_a_member_this_device_has_not_fetched_yet(
    register_client,
) -> None:
    # `porch send --group` on a device that was offline while someone joined: its stored
    # member list is stale, and the late joiner must still get what follows (trial2).
    a, b, c = (await register_client(), await register_client(), await register_client())
    async with a, b, c, inboxes({"c": c}) as box:
        gid = (await a.groups.create("Hikers", [b.account_id])).id
        await until(lambda: member(b, gid), "b to hear of the group")
        stale = b._store.get_group(gid)
        assert stale is not None
        await a.groups.add(gid, [c.account_id])
        await until(lambda: member(b, gid, c.account_id), "b to see c join")
        b._store.put_group(stale)  # as if b had been offline during the add
        sent = await b.groups.send(gid, "hello c")
        await b.wait_sent(sent)
        await until(lambda: ("hello c", False) in box["c"].texts(gid), "c to get the text")


async def test_a_member_removed_while_offline_is_told_who_removed_it(
    register_client,
) -> None:
    # trial2: the removed member's device was offline, so no group_changed hint reached it,
    # and nothing told it it was out until some group command happened to fetch.
    from porch.client import GroupUpdated

    a, b = await register_client(), await register_client()
    async with a, b:
        gid = (await a.groups.create("Hikers", [b.account_id])).id
        await until(lambda: member(b, gid), "b to hear of the group")
    async with Client(a.profile_dir) as a_again:
        await a_again.groups.remove(gid, b.account_id)  # b is offline
        await a_again.flush()
    async with Client(b.profile_dir) as b_again, inboxes({"b": b_again}) as box:

        def told() -> list[tuple[str, str, tuple[str, ...]]]:
            return [
                (e.by, e.action, e.targets)
                for e in box["b"].events
                if isinstance(e, GroupUpdated) and e.action == "remove"
            ]

        await until(lambda: bool(told()), "b to be told")
        assert told() == [(a.account_id, "remove", (b.account_id,))]
        assert not member(b_again, gid)


async def test_a_rotation_cut_short_leaves_invites_and_renames_readable(
    register_client,
) -> None:
    # trial2: a `leave` made a's `porch send` rotate the state key; the process ended after
    # the new key was stored, before the state was sealed under it. The invite link then
    # carried the unused key (the joiner saw "group e09998a1", never the name), and a rename
    # sealed under it was unreadable to the members, who never got it.
    a, b, c = (await register_client(), await register_client(), await register_client())
    async with a, b, c:
        gid = (await a.groups.create("Hikers", [b.account_id])).id

        def name_on(client: Client) -> str | None:
            g = client._store.get_group(gid)
            return g.state.name if g is not None and g.state is not None else None

        await until(lambda: name_on(b) == "Hikers", "b to open the state")
        a.groups._crypto.new_state_key(gid)  # the rotation, cut short
        joined = await c.groups.join(await a.groups.invite(gid))
        assert joined is not None and joined.label == "Hikers"
        await a.groups.rename(gid, "Hill walkers")
        await until(lambda: name_on(b) == "Hill walkers", "b to open the renamed state")
        await until(lambda: name_on(c) == "Hill walkers", "c to open the renamed state")


async def test_a_group_text_is_delivered_then_read_once_every_member_answered(
    register_client,
) -> None:
    # Ticks on one's own group texts (porch.client.group_ticks): receipts come 1:1 from each
    # member; the text rises only when all of them answered.
    a, b, c = (await register_client(), await register_client(), await register_client())
    async with a, b, c, inboxes({"b": b, "c": c}) as box:
        gid = (await a.groups.create("Hikers", [b.account_id, c.account_id])).id
        await until(lambda: member(b, gid) and member(c, gid), "b and c to hear of the group")
        sent = await a.groups.send(gid, "summit at noon")
        await a.wait_sent(sent)

        def status() -> str:
            return next(m.status for m in a.history(f"g:{gid}") if m.client_id == sent)

        for name in ("b", "c"):
            await until(lambda n=name: ("summit at noon", False) in box[n].texts(gid), name)
        await until(lambda: status() == "delivered", "delivered once both got it")
        await b.mark_read(f"g:{gid}", [sent])
        await asyncio.sleep(1)
        assert status() == "delivered"  # c has not read it
        await c.mark_read(f"g:{gid}", [sent])
        await until(lambda: status() == "read", "read once both read it")


async def test_rejoining_by_a_link_made_before_a_rekey_opens_the_state(
    register_client,
) -> None:
    # trial (2026-12-02): c was removed (the state got a new key), then joined again by the
    # link made before: the link holds the old epoch's key, and c's `group info` said "name
    # not readable yet" for good. The lowest admin's device now tells the members the
    # current key when someone new appears (ShareStateKey).
    a, b, c = (await register_client(), await register_client(), await register_client())
    async with a, b, c:
        gid = (await a.groups.create("Hikers", [b.account_id, c.account_id])).id

        def name_on(client: Client) -> str | None:
            g = client._store.get_group(gid)
            return g.state.name if g is not None and g.state is not None else None

        await until(lambda: name_on(c) == "Hikers", "c to open the state")
        link = await a.groups.invite(gid)
        await a.groups.remove(gid, c.account_id)
        await until(lambda: not member(c, gid), "c to hear it was removed")
        await a.groups.rename(gid, "Hill walkers")  # sealed under the new key
        await until(lambda: name_on(b) == "Hill walkers", "b to open the renamed state")
        joined = await c.groups.join(link)
        assert joined is not None
        await until(lambda: name_on(c) == "Hill walkers", "c to open the state after rejoining")
