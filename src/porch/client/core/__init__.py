"""The sans-IO client core: state, sessions and content handling (docs/design.md)."""

from porch.client.core.actions import (
    Action,
    ClaimKeys,
    EmitEvent,
    FetchGroup,
    FetchKeys,
    PauseOutbox,
    Reconnect,
    RotateStateKey,
    SendFrame,
    SendSettled,
    ShareStateKey,
    TopUpKeys,
    WakeOutbox,
)
from porch.client.core.handlers import Envelope, Handler, Handlers, default_handlers
from porch.client.core.keys import Bundle, DirectoryDevice
from porch.client.core.state import ClientCore

__all__ = [
    "Action",
    "Bundle",
    "ClaimKeys",
    "ClientCore",
    "DirectoryDevice",
    "EmitEvent",
    "Envelope",
    "FetchGroup",
    "FetchKeys",
    "Handler",
    "Handlers",
    "PauseOutbox",
    "Reconnect",
    "RotateStateKey",
    "SendFrame",
    "SendSettled",
    "ShareStateKey",
    "TopUpKeys",
    "WakeOutbox",
    "default_handlers",
]
