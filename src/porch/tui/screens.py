"""Dialogs of `porch chat`."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class RecipientScreen(ModalScreen[str | None]):
    """Asks whom to talk to: +NUMBER, @USERNAME or an account id."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("New conversation with (+NUMBER, @USERNAME or account id):")
            yield Input(placeholder="@bob", id="recipient")

    @on(Input.Submitted, "#recipient")
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
