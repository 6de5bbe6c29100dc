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
    ReceiptEvent,
    SendFailedEvent,
    SendPausedEvent,
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
    "NetworkTransport",
    "NotRegistered",
    "ReceiptEvent",
    "SendFailed",
    "SendFailedEvent",
    "SendPaused",
    "SendPausedEvent",
    "SendResult",
    "ServerError",
    "Timeout",
    "Transport",
    "TypingEvent",
    "Verification",
]
