"""The Porch Python SDK: an async Client with end-to-end encryption (see client.Client)."""

from porch.client.client import Client, SendResult
from porch.client.errors import (
    ClientError,
    NotRegistered,
    SendFailed,
    SendPaused,
    ServerError,
    Timeout,
)
from porch.client.events import (
    ConnectionChanged,
    DecryptionFailed,
    DevicesChanged,
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
from porch.client.transport import NetworkTransport, Transport
from porch.client.verified import Verification

__all__ = [
    "Client",
    "ClientError",
    "ConnectionChanged",
    "DecryptionFailed",
    "DevicesChanged",
    "Drained",
    "Event",
    "GroupUpdated",
    "IdentityChanged",
    "Message",
    "MessageDeleted",
    "MessageEdited",
    "NetworkTransport",
    "NotRegistered",
    "ReactionChanged",
    "ReceiptEvent",
    "SendFailed",
    "SendFailedEvent",
    "SendPaused",
    "SendPausedEvent",
    "SendResult",
    "ServerError",
    "Timeout",
    "TimerChanged",
    "Transport",
    "TypingEvent",
    "Verification",
]
