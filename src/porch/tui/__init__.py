"""The interactive terminal chat (`porch chat`), a Textual app on top of the SDK Client."""

from porch.tui.app import ChatApp

__all__ = ["ChatApp"]
