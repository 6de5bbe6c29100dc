"""ChatApp: conversations on the left, the open conversation on the right, a composer below.

Everything someone else chose (labels, message text, error messages) is shown through
`printable` inside rich Text objects: control characters appear as escapes instead of moving
the cursor, and `[` is never read as Textual markup (porch.cli.text).

The app never owns the Client's lifecycle: the caller enters `async with client:` and runs the
app inside it. A worker consumes the client's events and refreshes the widgets from the local
store (the store is the source of truth for history, ticks and unread counts); what each
event does to the screen is porch.tui.events's (a mixin of ChatApp).
"""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input, OptionList, Static
from textual.widgets.option_list import Option

from porch.cli.text import one_line, printable
from porch.client import Client, ClientError, Verification
from porch.client.store import HistoryMessage
from porch.tui import commands, rich
from porch.tui.events import EventsMixin
from porch.tui.groups import GroupView, is_group
from porch.tui.rich import PAUSED_LINE
from porch.tui.screens import RecipientScreen
from porch.tui.typing import TypingSender

__all__ = ["PAUSED_LINE", "ChatApp", "RecipientScreen"]

# The title's mark for a contact's verification (docs/design.md, "Verified contacts").
VERIFIED_MARKS = {
    Verification.VERIFIED: ("  ✓ verified", "bold green"),
    Verification.KEY_CHANGED: ("  ⚠ safety number changed", "bold yellow"),
}


class ChatApp(EventsMixin, App[None]):
    """The Porch chat; `client` must already be started (`async with client:`)."""

    TITLE = "Porch"
    CSS = """
    #main { height: 1fr; }
    #conversations { width: 30; height: 100%; border: none; border-right: solid $panel-lighten-2; }
    #chat { width: 1fr; height: 100%; }
    #peer-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    #history-scroll { height: 1fr; padding: 0 1; }
    #typing { height: 1; padding: 0 1; color: $text-muted; text-style: italic; }
    RecipientScreen { align: center middle; }
    #dialog { width: 64; height: auto; padding: 1 2; border: thick $accent; background: $surface; }
    """
    BINDINGS = [
        Binding("ctrl+n", "new_conversation", "New chat"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, client: Client, open_to: str | None = None) -> None:
        super().__init__()
        self.client = client
        self.open_to = open_to
        self.peer: str | None = None
        self.groups = GroupView(client)  # group conversations and their changes (groups.py)
        self.history_lines: list[str] = []  # the plain text of the history pane, one per message
        self.typing_shown = False
        self._typing_until = 0.0
        self._typing = TypingSender(lambda: self.peer, self._send_typing, self.set_timer)
        self._failed: set[str] = set()
        self._paused: set[str] = set()  # outbox items waiting for a changed key's acceptance
        self._pending_ticks = False
        me = client.config
        self._me = f"@{me.username}" if me.username else me.phone

    # Layout ------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield OptionList(id="conversations")
            with Vertical(id="chat"):
                yield Static("No conversation open", id="peer-title")
                with VerticalScroll(id="history-scroll"):
                    yield Static("", id="history")
                yield Static("", id="typing")
                yield Input(placeholder="/to @name starts a conversation", id="composer")
        yield Footer()

    async def on_mount(self) -> None:
        self._show_connection(self.client.connected)
        self.refresh_conversations()
        self.query_one("#composer", Input).focus()
        self.set_interval(0.5, self._tick)
        self.consume_events()
        if self.open_to:
            await self.open_recipient(self.open_to)
        elif conversations := self.client.conversations():
            await self.open_peer(conversations[0].peer)

    def _show_connection(self, connected: bool) -> None:
        state = "● connected"
        if not connected:  # with why the last attempt failed: a wrong port, a server down
            why = self.client.connect_error
            state = "○ connecting…" + (f" ({one_line(why, 80)})" if why else "")
        self.sub_title = f"{self._me}  {state}"

    # Rendering ---------------------------------------------------------------------------------

    def refresh_conversations(self) -> None:
        options: list[Option] = []
        peers: list[str] = []
        for conv in self.groups.conversations():
            line = Text(self._label(conv.peer), style="bold")
            if conv.unread:
                line.append(f"  ({conv.unread})", style="bold magenta")
            line.append("\n" + one_line(conv.last_text, 28), style="dim")
            options.append(Option(line, id=conv.peer))
            peers.append(conv.peer)
        if self.peer is not None and self.peer not in peers:
            options.insert(0, Option(Text(self._label(self.peer), style="bold"), id=self.peer))
            peers.insert(0, self.peer)
        listing = self.query_one("#conversations", OptionList)
        listing.set_options(options)
        if self.peer is not None:
            listing.highlighted = peers.index(self.peer)

    def _label(self, account_id: str) -> str:
        return self.groups.label(account_id)  # group peers (g:<id>) by their name

    def _render_message(self, msg: HistoryMessage) -> tuple[RenderableType, str]:
        failed, paused = msg.client_id in self._failed, msg.client_id in self._paused
        return rich.message_line(msg, self._label, self.groups.author, failed, paused)

    def refresh_history(self) -> None:
        if self.peer is None:
            return
        messages = self.client.history(self.peer)
        waiting = [m.client_id for m in messages if m.outgoing and m.status == "pending"]
        if waiting:  # paused ones are shown as waiting, and need no polling
            self._paused = {
                e.client_id
                for e in self.client.outbox()
                if e.state == "paused" and e.recipient == self.peer
            }
        timed = [(m.ts, self._render_message(m)) for m in messages]
        for line in self.groups.system_lines(self.peer):  # group changes, among them by time
            shown = Text("* " + printable(line.text), style="italic cyan")
            timed.append((line.ts, (shown, shown.plain)))
        rendered = [r for _, r in sorted(timed, key=lambda t: t[0])]
        self._pending_ticks = any(cid not in self._paused for cid in waiting)
        self.history_lines = [plain for _, plain in rendered]
        body = Group(*(r for r, _ in rendered)) if rendered else "No messages yet."
        self.query_one("#history", Static).update(body)
        # On screen now: a `porch recv` on this profile need not print these again.
        self.client.mark_shown(peer=self.peer)
        self.query_one("#history-scroll", VerticalScroll).scroll_end(animate=False)

    def _set_typing(self, shown: bool, who: str | None = None) -> None:
        self.typing_shown = shown
        who = who or self.peer  # in a group, the member typing
        label = self._label(who) if who else ""
        self.query_one("#typing", Static).update(Text(f"{label} is typing…" if shown else ""))

    def _tick(self) -> None:
        if self.typing_shown and time.monotonic() > self._typing_until:
            self._set_typing(False)
        if self._pending_ticks:  # "sent" has no event of its own: poll while something waits
            self.refresh_history()
        if not self.client.connected:  # a failed attempt has no event of its own either
            self._show_connection(False)

    # Conversations -----------------------------------------------------------------------------

    async def open_recipient(self, to: str) -> None:
        try:
            peer = await self.client.resolve(to)
        except ClientError as exc:
            self.notify(
                printable(str(exc)),
                title="Cannot open that conversation",
                severity="error",
                markup=False,
            )
            return
        await self.open_peer(peer)

    async def open_peer(self, peer: str) -> None:
        if peer != self.peer:
            await self._typing.stop()
            self._set_typing(False)
        self.peer = peer
        group = is_group(peer)
        label = self._label(peer) if group else printable(await self.client.name_of(peer))
        await self._show_title(peer, label)
        self.query_one("#composer", Input).placeholder = f"Message {label}"
        unread = [
            m.client_id
            for m in self.client.history(peer)
            if not m.outgoing and m.status == "received"
        ]
        if unread:  # a group's go 1:1 to each author (Client.mark_read)
            await self.client.mark_read(peer, unread)
        self.refresh_history()
        self.refresh_conversations()

    async def _show_title(self, peer: str, label: str) -> None:
        title = Text(label, style="bold")
        title.append(rich.timer_mark(self.client, peer), style="bold magenta")
        if is_group(peer):
            self.query_one("#peer-title", Static).update(title)
            return
        mark = VERIFIED_MARKS.get(await self.client.verification(peer))
        if mark is not None:
            title.append(*mark)
        self.query_one("#peer-title", Static).update(title)

    @on(OptionList.OptionSelected, "#conversations")
    async def conversation_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            await self.open_peer(event.option.id)
            self.query_one("#composer", Input).focus()

    def action_new_conversation(self) -> None:
        def chosen(to: str | None) -> None:
            if to:
                self.run_worker(self.open_recipient(to), exit_on_error=False)

        self.push_screen(RecipientScreen(), chosen)

    # Composer ----------------------------------------------------------------------------------

    @on(Input.Submitted, "#composer")
    async def composer_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        composer = self.query_one("#composer", Input)
        if (to := commands.recipient(text)) is not None:
            composer.clear()
            await self.open_recipient(to)
            return
        if self.peer is None:
            self.notify("Open a conversation first: ctrl+n, or type /to @name", severity="warning")
            return
        composer.clear()
        if commands.is_command(text):  # /reply, /react, /edit, /delete, /timer
            try:
                self.notify(await commands.run_command(self.client, self.peer, text), markup=False)
            except ClientError as exc:
                self.notify(printable(str(exc)), title="Not done", severity="error", markup=False)
            await self._show_title(self.peer, self._label(self.peer))
            self.refresh_history()
            return
        await self._typing.stop()
        try:
            await commands.send_text(self.client, self.peer, event.value)
        except ClientError as exc:
            self.notify(printable(str(exc)), title="Not sent", severity="error", markup=False)
        self.refresh_history()
        self.refresh_conversations()

    @on(Input.Changed, "#composer")
    def composer_changed(self, event: Input.Changed) -> None:
        if self.peer is None or not event.value or event.value.startswith("/"):
            return
        self._typing.keystroke(self.peer)  # paced "started", then "stopped" (tui/typing.py)

    def _send_typing(self, peer: str, started: bool) -> None:
        self.run_worker(self.client.set_typing(peer, started), group="typing", exit_on_error=False)
