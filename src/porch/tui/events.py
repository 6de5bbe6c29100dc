"""What the client's events do to `porch chat`'s screen: new messages (opened, marked read,
or notified), group changes, receipts and edits, the peer's typing indicator, failed and
paused sends, changed safety numbers, undecryptable messages and the connection's state.

A mixin of porch.tui.app.ChatApp; the attributes and methods declared below are the app's.
Separate because this is the one place where the client's event stream meets the widgets
(a worker reads it, `handle_event` decides per event what to refresh or notify), while
app.py holds the layout, the rendering, the conversations and the composer. Everything
someone else chose goes through `printable` (porch.cli.text), as in app.py.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import work

from porch.cli.text import one_line, printable
from porch.client import (
    ClientError,
    ConnectionChanged,
    DecryptionFailed,
    Drained,
    Event,
    GroupUpdated,
    IdentityChanged,
    Message,
    MessageDeleted,
    MessageEdited,
    ReactionChanged,
    ReceiptEvent,
    SendFailedEvent,
    SendPausedEvent,
    TimerChanged,
    TypingEvent,
)
from porch.client.group_info import group_peer

if TYPE_CHECKING:
    from textual.app import App

    from porch.client import Client
    from porch.tui.groups import GroupView

    _AppBase = App[None]  # for the checker: notify and the other App members
else:
    _AppBase = object

TYPING_SHOW = 6.0  # hide the peer's indicator after this long without a new typing event


class EventsMixin(_AppBase):
    if TYPE_CHECKING:
        client: Client
        peer: str | None
        groups: GroupView
        _typing_until: float
        _failed: set[str]
        _paused: set[str]

        def _label(self, account_id: str) -> str: ...
        def _show_connection(self, connected: bool) -> None: ...
        def _set_typing(self, shown: bool, who: str | None = None) -> None: ...
        async def _show_title(self, peer: str, label: str) -> None: ...
        async def open_peer(self, peer: str) -> None: ...
        def refresh_history(self) -> None: ...
        def refresh_conversations(self) -> None: ...

    @work(exclusive=True, group="events", exit_on_error=False)
    async def consume_events(self) -> None:
        while True:
            try:
                event = await self.client.next_event()
            except ClientError as exc:  # replaced by another connection, or refused
                self._show_connection(False)
                self.notify(
                    printable(str(exc)),
                    title="Disconnected",
                    severity="error",
                    timeout=30,
                    markup=False,
                )
                return
            if event is not None:
                try:
                    await self.handle_event(event)
                except Exception as exc:  # one bad event must not stop the stream
                    self.notify(printable(str(exc)), severity="error", markup=False)

    async def handle_event(self, event: Event) -> None:
        label = self._label
        if isinstance(event, Message) and event.group is not None:
            await self.client.name_of(event.sender)
            if group_peer(event.group) == self.peer:
                if not event.outgoing:
                    await self.client.mark_read(self.peer, [event.id])
                self.refresh_history()
            else:
                title = f"From {label(event.sender)} in {label(group_peer(event.group))}"
                self.notify(one_line(event.text, 80), title=title, markup=False)
            self.refresh_conversations()
        elif isinstance(event, GroupUpdated):
            text = self.groups.update(event)
            if group_peer(event.group) == self.peer:
                self.refresh_history()
            else:
                self.notify(printable(text), markup=False)
            self.refresh_conversations()
        elif isinstance(event, Message):
            await self.client.name_of(event.sender)  # first seen: fetch @username or +number
            if self.peer is None:
                await self.open_peer(event.sender)
            elif event.sender == self.peer:
                await self.client.mark_read(event.sender, [event.id])
                self._set_typing(False)
                self.refresh_history()
            else:
                self.notify(
                    one_line(event.text, 80), title=f"From {label(event.sender)}", markup=False
                )
            self.refresh_conversations()
        elif isinstance(event, ReceiptEvent):
            if event.sender == self.peer or self.peer in event.groups:
                self.refresh_history()
        elif isinstance(event, MessageEdited | MessageDeleted | ReactionChanged | TimerChanged):
            if self.peer is not None and event.peer == self.peer:
                await self._show_title(self.peer, label(self.peer))  # the timer, if it changed
                self.refresh_history()
        elif isinstance(event, TypingEvent):
            here = group_peer(event.group) if event.group is not None else event.sender
            if here == self.peer:
                self._typing_until = time.monotonic() + TYPING_SHOW
                self._set_typing(event.started, event.sender)
        elif isinstance(event, SendFailedEvent):
            self._failed.add(event.id)
            self.notify(
                printable(f"{event.message} ({event.code})"),
                title=f"Not sent to {label(event.recipient)}",
                severity="error",
                timeout=10,
                markup=False,
            )
            if event.recipient == self.peer:
                self.refresh_history()
        elif isinstance(event, IdentityChanged):
            self.notify(
                f"The safety number with {label(event.account_id)} changed: they "
                "re-registered or someone is intercepting. Verify it before trusting them.",
                title="Safety number changed",
                severity="warning",
                timeout=20,
                markup=False,
            )
            if event.account_id == self.peer:
                await self._show_title(self.peer, label(self.peer))
                self.refresh_history()  # the notice is in the conversation too
        elif isinstance(event, SendPausedEvent):
            self._paused.add(event.id)
            if event.recipient == self.peer:
                self.refresh_history()
        elif isinstance(event, DecryptionFailed):
            asked = "; asked them to resend" if event.retry_requested else ""
            self.notify(
                f"A message from {label(event.sender)} could not be decrypted{asked}.",
                severity="warning",
                markup=False,
            )
            if event.sender == self.peer:
                self.refresh_history()
        elif isinstance(event, ConnectionChanged):
            self._show_connection(event.connected)
        elif isinstance(event, Drained):
            self.refresh_conversations()
            self.refresh_history()
