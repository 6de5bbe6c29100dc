"""The Porch Python SDK: an async Client with end-to-end encryption (see client.Client)."""

from porch.client.client import Client, SendResult
from porch.client.errors import ClientError, NotRegistered, SendFailed, ServerError, Timeout
from porch.client.events import (
    ConnectionChanged,
    DecryptionFailed,
    Drained,
    Event,
    IdentityChanged,
    Message,
    ReceiptEvent,
    SendFailedEvent,
    TypingEvent,
)
from porch.client.transport import NetworkTransport, Transport

__all__ = [
    "Client",
    "ClientError",
    "ConnectionChanged",
    "DecryptionFailed",
    "Drained",
    "Event",
    "IdentityChanged",
    "Message",
    "NetworkTransport",
    "NotRegistered",
    "ReceiptEvent",
    "SendFailed",
    "SendFailedEvent",
    "SendResult",
    "ServerError",
    "Timeout",
    "Transport",
    "TypingEvent",
]
