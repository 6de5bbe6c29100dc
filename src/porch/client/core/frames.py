"""Every frame the client core builds, in one place (docs/protocol.md, "Frames").

The builders are porch.protocol.client_frames' (dicts whose shape a test checks against the
typed models and docs/protocol.schema.json); this module is the core's one door to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from porch.protocol import client_frames as cf
from porch.protocol.frames import MAX_ACK_IDS


def auth(account_id: str, device_id: int, password: str) -> dict[str, Any]:
    # "batch": the server may send backlogs as `envelopes` frames (docs/protocol.md).
    return cf.auth(account_id, device_id, password, batch=True)


def ack(ids: list[int]) -> dict[str, Any]:
    return cf.ack(ids)


def rejects(reason: str, ids: list[int]) -> Iterator[dict[str, Any]]:
    """``reject`` frames for ids, at most MAX_ACK_IDS per frame (the server's bound)."""
    for i in range(0, len(ids), MAX_ACK_IDS):
        yield cf.reject(ids[i : i + MAX_ACK_IDS], reason)


def ciphertext(
    device: int, registration: int, kind: int | None = None, body: str | None = None
) -> dict[str, Any]:
    """A device entry: its own ciphertext, or (kind and body None) the send's shared one."""
    return cf.device_message(device, registration, kind, body)


def destination(account: str, devices: list[dict[str, Any]]) -> dict[str, Any]:
    return cf.destination(account, devices)


def send(
    client_id: str,
    destinations: list[dict[str, Any]],
    shared: tuple[int, str] | None = None,
    ephemeral: bool = False,
    ttl: int | None = None,
) -> dict[str, Any]:
    """destinations are destination dicts; shared (kind, base64 body) for devices without
    their own ciphertext (a group's Megolm message); ttl the seconds the server may keep it."""
    body = None if shared is None else cf.shared(*shared)
    return cf.send(client_id, destinations, body, ephemeral=ephemeral, ttl=ttl)
