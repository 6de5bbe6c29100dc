"""Every frame the client core builds, in one place (docs/protocol.md, "Frames").

Plain dicts for now; when porch.protocol has a model for each client frame, only this module
changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from porch.protocol.frames import MAX_ACK_IDS


def auth(account_id: str, device_id: int, password: str) -> dict[str, Any]:
    # "batch": the server may send backlogs as `envelopes` frames (docs/protocol.md).
    return {
        "type": "auth",
        "account": account_id,
        "device": device_id,
        "password": password,
        "batch": True,
    }


def ack(ids: list[int]) -> dict[str, Any]:
    return {"type": "ack", "ids": ids}


def rejects(reason: str, ids: list[int]) -> Iterator[dict[str, Any]]:
    """``reject`` frames for ids, at most MAX_ACK_IDS per frame (the server's bound)."""
    for i in range(0, len(ids), MAX_ACK_IDS):
        yield {"type": "reject", "ids": ids[i : i + MAX_ACK_IDS], "reason": reason}


def ciphertext(device: int, registration: int, kind: int, body: str) -> dict[str, Any]:
    return {"device": device, "registration": registration, "kind": kind, "body": body}


def send(
    client_id: str, to: str, messages: list[dict[str, Any]], ephemeral: bool = False
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "send", "id": client_id, "to": to, "messages": messages}
    if ephemeral:
        frame["ephemeral"] = True
    return frame
