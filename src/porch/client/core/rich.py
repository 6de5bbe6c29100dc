"""Rich messages in the client core: what a text's extras become in the store and in events,
and the rules for reactions, edits, deletes and timers (issue 8; docs/design.md, "Rich
messages").

Who may do what is decided here, on every receiving device alike:
- a reaction is the sending account's, one per message (a new one replaces it, "" removes);
- an edit or a delete applies only from the author of the target message (the sending
  account: a 1:1 message's author is one of the two sides, a group message's is in its row),
  within DELETE_WINDOW_MS, counted between the server timestamps of the original and of the
  action (which the sender cannot choose; its content ts only orders the edits); an edit or
  delete of an unknown message, or of someone else's, is ignored;
- a timer sets a 1:1 conversation's disappearing timer (a group's lives in its sealed state,
  see ``group_timer_changed``).
The same rules apply to one's own actions from one's other devices (``sent`` copies).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

from porch.client import retry
from porch.client.core.context import CoreState
from porch.client.events import (
    Message,
    MessageDeleted,
    MessageEdited,
    ReactionChanged,
    TimerChanged,
)
from porch.client.group_store import LocalGroup
from porch.client.history import HistoryMessage, MessageExtra
from porch.crypto.content import Delete, Edit, Reaction, Text, Timer
from porch.crypto.rich import DELETE_WINDOW_MS

if TYPE_CHECKING:
    from porch.client.core.handlers import Envelope
    from porch.client.rich_store import StoredMessage

log = logging.getLogger("porch.client")

RichAction = Reaction | Edit | Delete | Timer
RICH_ACTIONS: tuple[type[RichAction], ...] = (Reaction, Edit, Delete, Timer)
# Contents a user wrote (paused to a changed key, kept as failed, copied to one's devices).
USER_KINDS = (Text, *RICH_ACTIONS)
# A text dated further ahead of when the server stored it is shown at the server's time: a
# sender cannot pin its message to the end of a conversation or push its expiry out.
MAX_FUTURE_MS = 24 * 3600 * 1000
_UNITS = ((7 * 86400, "week"), (86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


def text_extra(text: Text) -> MessageExtra:
    return MessageExtra(text.attachments, text.reply, text.forwarded)


def text_ts(text: Text, server_ts: int) -> int:
    """The time a received text is shown at: its own ts, unless that is more than a day past
    when the server stored it (then the server's)."""
    return server_ts if server_ts and text.ts > server_ts + MAX_FUTURE_MS else text.ts


def expires_at(text: Text, server_ts: int = 0) -> int | None:
    """When a disappearing text goes: from its send time, so every device agrees (spec §3)."""
    return None if text.expires is None else text_ts(text, server_ts) + text.expires * 1000


def message_event(
    text: Text,
    sender: str,
    device: int,
    server_ts: int,
    *,
    group: str | None = None,
    outgoing: bool = False,
    to: str | None = None,
) -> Message:
    return Message(
        text.id,
        sender,
        device,
        text.body,
        text_ts(text, server_ts),
        server_ts,
        group=group,
        outgoing=outgoing,
        to=to,
        attachments=text.attachments,
        reply=text.reply,
        forwarded=text.forwarded,
        expires_at=expires_at(text, server_ts),
    )


def describe_seconds(seconds: int) -> str:
    """30 seconds, 5 minutes, 1 day, 2 weeks: the largest unit that divides it evenly."""
    for size, unit in _UNITS:
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    raise AssertionError("every integer is a number of seconds")


def timer_notice(who: str, seconds: int) -> str:
    if seconds == 0:
        return f"{who} turned off disappearing messages"
    return f"{who} set disappearing messages to {describe_seconds(seconds)}"


def within_window(target: StoredMessage, at: int) -> bool:
    """An edit or delete the server stored at ``at`` may still change ``target`` (spec §3):
    server times on both sides, so a backdated original or a future-dated action gains
    nothing."""
    return at - target.stored_at <= DELETE_WINDOW_MS


def _changeable(target: HistoryMessage) -> bool:
    # Lines the client wrote itself (notices, placeholders) belong to nobody.
    return not target.deleted and target.status not in (retry.NOTICE, retry.UNDECRYPTABLE)


class RichApplier:
    """Applies a reaction, edit, delete or timer by ``actor`` in ``peer``'s conversation.

    ``persist`` runs inside the receive transaction (store before ack); ``react`` emits the
    event afterwards, when ``persist`` said something changed."""

    def persist(
        self,
        state: CoreState,
        peer: str,
        actor: str,
        content: RichAction,
        db: sqlite3.Connection,
        at: int,
    ) -> bool:
        """``at``: when the server stored the action (its envelope's ts; now for one's own)."""
        store, me = state.store, state.account_id
        if isinstance(content, Timer):
            if peer.startswith("g:"):
                return False  # a group's timer is in its sealed state, never a content
            if not store.set_timer(peer, content.seconds, content.ts, db):
                return False
            who = "You" if actor == me else state.label(actor)
            notice = timer_notice(who, content.seconds)
            store.add_message(
                peer, f"timer-{content.ts}", False, 0, content.ts, notice, retry.NOTICE, db
            )
            return True
        author = content.author if isinstance(content, Reaction) else actor
        target = store.find_message(peer, author, content.id, me, db)
        if target is None or not _changeable(target.message):
            log.info("a %s for an unknown or gone message: ignored", type(content).__name__)
            return False
        if isinstance(content, Reaction):
            return store.set_reaction(target.row, actor, content.emoji, content.ts, db)
        if not within_window(target, at):
            log.info("a %s past its window: ignored", type(content).__name__)
            return False
        if isinstance(content, Edit):
            return store.apply_edit(target, content.body, content.ts, db)
        return store.mark_deleted(target, db)

    def react(
        self, state: CoreState, peer: str, actor: str, content: RichAction, new: bool
    ) -> None:
        if not new:
            return
        if isinstance(content, Timer):
            state.emit(TimerChanged(peer, content.seconds, actor))
        elif isinstance(content, Reaction):
            state.emit(ReactionChanged(peer, content.id, content.author, actor, content.emoji))
        elif isinstance(content, Edit):
            state.emit(MessageEdited(peer, content.id, actor, content.body, content.ts))
        else:
            state.emit(MessageDeleted(peer, content.id, actor))


APPLIER = RichApplier()


class DirectRichHandler:
    """A reaction, edit, delete or timer over Olm: in the conversation with its sender (one
    that names a group came the wrong way: group actions travel in the group's session)."""

    def persist(
        self, state: CoreState, env: Envelope, content: RichAction, db: sqlite3.Connection
    ) -> bool:
        if getattr(content, "group", None) is not None:
            return False
        return APPLIER.persist(state, env.sender, env.sender, content, db, env.ts)

    def react(self, state: CoreState, env: Envelope, content: RichAction, new: bool) -> None:
        APPLIER.react(state, env.sender, env.sender, content, new)


class GroupRichHandler:
    """A reaction, edit or delete inside Megolm (its ``group`` checked against the session's by
    GroupCrypto.decrypt): in the group's conversation, by its sender."""

    def persist(
        self, state: CoreState, env: Envelope, content: RichAction, db: sqlite3.Connection
    ) -> bool:
        group = getattr(content, "group", None)
        if group is None:
            return False
        return APPLIER.persist(state, "g:" + group, env.sender, content, db, env.ts)

    def react(self, state: CoreState, env: Envelope, content: RichAction, new: bool) -> None:
        group = getattr(content, "group", None)
        if group is not None:
            APPLIER.react(state, "g:" + group, env.sender, content, new)


def group_timer_notice(
    state: CoreState, old: LocalGroup | None, new: LocalGroup, by: str
) -> int | None:
    """After a group fetch (or one's own change): a change of the sealed state's timer gets a
    notice line, as a 1:1 timer does; returns the new timer, None if it did not change."""
    if new.state is None or old is None or old.state is None:
        return None
    seconds = new.state.timer_seconds
    if seconds == old.state.timer_seconds:
        return None
    who = "You" if by == state.account_id else (state.label(by) if by else "Someone")
    notice = timer_notice(who, seconds)
    cid = f"timer-{new.state_revision}"
    state.store.add_message("g:" + new.group_id, cid, False, 0, state.clock(), notice, retry.NOTICE)
    return seconds
