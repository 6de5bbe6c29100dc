"""The Client's rich-message methods: texts, reply, react, edit, delete, forward, disappearing
timers, and the one path every outgoing content takes (``send_content``; issue 8 spec §5).

A mixin of porch.client.client.Client, as porch.client.trust is; the attributes below are the
Client's. ``peer`` is what ``history`` takes: an account id or "g:<group id>" (also +number,
@username or a group's name or id prefix). The sender applies its own action to its own history
at once, through the same rules the receivers apply (porch.client.core.rich), so what it shows
is what they show.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from porch.client.core.context import new_message_id, now_ms
from porch.client.core.rich import (
    APPLIER,
    RichAction,
    describe_seconds,
    group_timer_notice,
    within_window,
)
from porch.client.errors import ClientCode, UsageError
from porch.client.events import Event, MessageDeleted, MessageEdited, ReactionChanged, TimerChanged
from porch.client.history import MAX_EDITS, HistoryMessage
from porch.client.outgoing import queue_outgoing, with_timer
from porch.client.quotes import preview
from porch.client.rich_store import EXPIRE_BATCH, StoredMessage
from porch.client.waiters import SendResult
from porch.crypto.content import Delete, Edit, Encodable, Reaction, Text, Timer
from porch.crypto.rich import (
    DELETE_WINDOW_MS,
    MAX_EMOJI_BYTES,
    MAX_TIMER_SECONDS,
    Attachment,
    Quote,
)

if TYPE_CHECKING:
    from porch.client.core import ClientCore
    from porch.client.groups import Groups
    from porch.client.runner import Runner
    from porch.client.store import LocalStore

log = logging.getLogger("porch.client")

MAX_FORWARD = 5  # chats one forward may go to at once (WhatsApp's limit)
EXPIRE_EVERY = 30.0  # seconds between sweeps of disappearing messages while running
_WINDOW = describe_seconds(DELETE_WINDOW_MS // 1000)


class RichMixin:
    if TYPE_CHECKING:
        _store: LocalStore
        _runner: Runner
        _core: ClientCore
        groups: Groups

        @property
        def account_id(self) -> str: ...
        @property
        def device_id(self) -> int: ...
        async def resolve(self, to: str) -> str: ...
        async def wait_sent(self, client_id: str, timeout: float | None = 30.0) -> SendResult: ...
        def _emit(self, event: Event) -> None: ...

    # Sending any content ---------------------------------------------------------------------

    async def conversation(self, peer: str) -> str:
        """The history peer of ``peer``: "g:<group id>" for a group, else an account id."""
        if peer.startswith("g:"):
            return "g:" + self.groups.find(peer[2:])
        return await self.resolve(peer)

    def timer_of(self, peer: str) -> int:
        """The conversation's disappearing timer in seconds (0: off)."""
        if peer.startswith("g:"):
            local = self._store.get_group(peer[2:])
            return local.state.timer_seconds if local is not None and local.state else 0
        return self._store.timer(peer)

    async def send_content(
        self,
        peer: str,
        content: Encodable,
        *,
        ttl: int | None = None,
        wait: bool = True,
        timeout: float | None = 30.0,
    ) -> SendResult:
        """Queue any content for a 1:1 peer or a group ("g:<id>"), durably; with ``wait``,
        return once the server acknowledged it. A text is recorded in history (pending) with
        its extras; one sent while the conversation's timer is on carries it (``exp``), and
        goes with ``ttl`` = that timer unless ``ttl`` says otherwise."""
        target = await self.conversation(peer)
        if target.startswith("g:"):
            local = self._store.get_group(target[2:])
            if local is None or all(m.account_id != self.account_id for m in local.members):
                raise UsageError("you are not a member of that group; `porch group list`")
        content = with_timer(content, self.timer_of(target))
        client_id = queue_outgoing(
            self._store,
            target,
            content,
            device_id=self.device_id,
            me=self.account_id,
            now=now_ms(),
            ttl=ttl,
        )
        self._runner.wake_outbox()
        if not wait:
            return SendResult(client_id, 0)
        return await self.wait_sent(client_id, timeout)

    async def send_text(
        self, to: str, text: str, *, wait: bool = True, timeout: float | None = 30.0
    ) -> SendResult:
        """Queue a text message durably; with wait, return once the server acknowledged it.
        With the conversation's disappearing timer on, the text carries it."""
        recipient = await self.resolve(to)
        content = self.new_text(recipient, text)
        return await self.send_content(recipient, content, wait=wait, timeout=timeout)

    def new_text(
        self,
        peer: str,
        body: str,
        *,
        attachments: tuple[Attachment, ...] = (),
        reply: Quote | None = None,
        forwarded: bool = False,
    ) -> Text:
        """A fresh text for ``peer``'s conversation ("g:<id>" names its group in it)."""
        if peer.startswith("g:"):
            return self.groups.text(
                peer, body, attachments=attachments, reply=reply, forwarded=forwarded
            )
        cid = new_message_id()
        return Text(cid, body, now_ms(), attachments=attachments, reply=reply, forwarded=forwarded)

    def message(
        self, peer: str, client_id: str, author: str | None = None
    ) -> HistoryMessage | None:
        """Message ``client_id`` of ``peer``'s conversation (a history peer), by ``author``
        when given, with its reactions and earlier versions; None when it is not here."""
        if author is None:
            found = self._store.find_by_id(peer, client_id)
        else:
            found = self._store.find_message(peer, author, client_id, self.account_id)
        return None if found is None else found.message

    # Replies, reactions, edits, deletes, forwards --------------------------------------------

    async def reply(
        self, peer: str, client_id: str, text: str, *, author: str | None = None, wait: bool = True
    ) -> SendResult:
        """Reply to message ``client_id`` (by ``author``, when ids could clash) with ``text``."""
        target, found = await self._target(peer, client_id, author)
        m = found.message
        quote = Quote(m.client_id, self._author_of(m), preview(m))
        return await self.send_content(target, self.new_text(target, text, reply=quote), wait=wait)

    async def react(
        self, peer: str, client_id: str, emoji: str, *, author: str | None = None, wait: bool = True
    ) -> SendResult:
        """React to a message with ``emoji`` ("" removes this account's reaction)."""
        if len(emoji.encode("utf-8", "surrogatepass")) > MAX_EMOJI_BYTES:
            raise UsageError(f"a reaction is one emoji (at most {MAX_EMOJI_BYTES} bytes)")
        target, found = await self._target(peer, client_id, author)
        m = found.message
        group = target[2:] if target.startswith("g:") else None
        reaction = Reaction(m.client_id, self._author_of(m), emoji, now_ms(), group=group)
        return await self._act(target, reaction, wait)

    async def edit(self, peer: str, client_id: str, text: str, *, wait: bool = True) -> SendResult:
        """Replace the body of one of this account's messages (within 48 hours)."""
        target, found = await self._own(peer, client_id, "edit", "edited")
        if len(found.message.edits) >= MAX_EDITS:
            raise UsageError(
                f"that message was edited {MAX_EDITS} times already; send a new one instead",
                code=ClientCode.EDIT_LIMIT,
            )
        group = target[2:] if target.startswith("g:") else None
        return await self._act(target, Edit(client_id, text, now_ms(), group=group), wait)

    async def delete(self, peer: str, client_id: str, *, wait: bool = True) -> SendResult:
        """Delete one of this account's messages for everyone (within 48 hours)."""
        target, _ = await self._own(peer, client_id, "delete", "deleted")
        group = target[2:] if target.startswith("g:") else None
        return await self._act(target, Delete(client_id, now_ms(), group=group), wait)

    async def forward(self, peer: str, client_id: str, to: Sequence[str]) -> list[SendResult]:
        """Send a copy of a message (its text and the same attachment pointers: nothing is
        uploaded again), marked forwarded, to 1..5 chats."""
        if not 1 <= len(to) <= MAX_FORWARD:
            raise UsageError(
                f"you can forward a message to at most {MAX_FORWARD} chats at once",
                code=ClientCode.FORWARD_LIMIT,
            )
        _, found = await self._target(peer, client_id, None)
        m = found.message
        # Each chat once, however it was named (@bob and bob's account id are one chat).
        targets = list(dict.fromkeys([await self.conversation(chat) for chat in to]))
        results = []
        for target in targets:
            text = self.new_text(target, m.text, attachments=m.attachments, forwarded=True)
            results.append(await self.send_content(target, text))
        return results

    async def set_timer(self, peer: str, seconds: int, *, wait: bool = True) -> SendResult | None:
        """Turn disappearing messages on (``seconds``) or off (0) for a conversation. A 1:1
        timer is a content both sides apply; a group's lives in its sealed state, changed like
        its name (returns None then)."""
        if not 0 <= seconds <= MAX_TIMER_SECONDS:
            raise UsageError(
                "a disappearing timer is 0 (off) up to 365 days", code=ClientCode.BAD_TIMER
            )
        target = await self.conversation(peer)
        if target.startswith("g:"):
            before = self._store.get_group(target[2:])
            await self.groups.set_timer(target, seconds)
            after = self._store.get_group(target[2:])
            if after is not None:  # the notice line the other members add on their fetch
                group_timer_notice(self._core.state, before, after, self.account_id)
            self._emit(TimerChanged(target, seconds, self.account_id))
            return None
        return await self._act(target, Timer(seconds, now_ms()), wait)

    # Disappearing messages -------------------------------------------------------------------

    def expire_now(self) -> int:
        """Delete the disappearing messages whose time has come (with their reactions, edit
        history and downloaded files), and says so (MessageDeleted, expired); returns how many
        went."""
        count, now = 0, now_ms()
        while True:  # in batches of EXPIRE_BATCH, until none is left
            gone = self._store.expire(now)
            for m in gone:
                self._emit(MessageDeleted(m.peer, m.client_id, self._author_of(m), expired=True))
            count += len(gone)
            if len(gone) < EXPIRE_BATCH:
                return count

    async def _expiry_loop(self) -> None:
        # On open, then every EXPIRE_EVERY seconds while the client runs (its task group).
        while True:
            gone = self.expire_now()
            if gone:
                log.info("%d disappearing messages expired", gone)
            await asyncio.sleep(EXPIRE_EVERY)

    # Helpers ---------------------------------------------------------------------------------

    def _author_of(self, m: HistoryMessage) -> str:
        if m.outgoing:
            return self.account_id
        return m.author or m.peer

    async def _target(
        self, peer: str, client_id: str, author: str | None
    ) -> tuple[str, StoredMessage]:
        target = await self.conversation(peer)
        if author is None:
            found = self._store.find_by_id(target, client_id)
        else:
            account = await self.resolve(author)
            found = self._store.find_message(target, account, client_id, self.account_id)
        if found is None or found.message.deleted or found.message.status == "notice":
            raise UsageError(
                f"no message {client_id[:24]!r} in that conversation; "
                "`porch history` shows their ids",
                code=ClientCode.MESSAGE_NOT_FOUND,
            )
        return target, found

    async def _own(
        self, peer: str, client_id: str, verb: str, done: str
    ) -> tuple[str, StoredMessage]:
        target = await self.conversation(peer)
        found = self._store.find_message(target, self.account_id, client_id, self.account_id)
        if found is None or found.message.deleted:
            other = self._store.find_by_id(target, client_id)
            if other is not None and not other.message.deleted:
                raise UsageError(
                    f"you can only {verb} your own messages", code=ClientCode.NOT_AUTHOR
                )
            await self._target(target, client_id, None)  # raises message_not_found
        assert found is not None
        if not within_window(found, now_ms()):
            raise UsageError(
                f"messages can only be {done} for {_WINDOW} after they were sent",
                code=ClientCode.TOO_LATE,
            )
        return target, found

    async def _act(self, target: str, content: RichAction, wait: bool) -> SendResult:
        """Apply one's own action here at once (the rules the receivers apply), then send it."""
        with self._store.transaction() as db:
            state, me = self._core.state, self.account_id
            changed = APPLIER.persist(state, target, me, content, db, now_ms())
        if changed:
            self._emit(_event(target, self.account_id, content))
        return await self.send_content(target, content, wait=wait)


def _event(peer: str, me: str, content: RichAction) -> Event:
    if isinstance(content, Reaction):
        return ReactionChanged(peer, content.id, content.author, me, content.emoji)
    if isinstance(content, Edit):
        return MessageEdited(peer, content.id, me, content.body, content.ts)
    if isinstance(content, Delete):
        return MessageDeleted(peer, content.id, me)
    return TimerChanged(peer, content.seconds, me)
