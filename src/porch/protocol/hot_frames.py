"""The hot client frames (`send`, `ack`, `reject`) checked by hand (issue 10).

Every message costs the server one `send` and one `ack` frame, and their JSON and pydantic
validation were 8% of the event loop's samples (docs/performance.md, "Hot path"). Here the frame is
checked field by field against the same bounds (protocol/fields.py, docs/protocol.md,
"Frames") and read into plain slotted objects. The pydantic models in client_frames.py stay
the reference: a frame this check refuses is handed to them (`validate_client_object`), whose
error (code, message, `ref`, `frame_type`) is the one the client gets: the messages are unchanged;
tests/unit/protocol/test_hot_frames.py holds the two to accepting exactly the same frames.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from porch.protocol.client_frames import (
    AckFrame,
    AnyClientFrame,
    RejectFrame,
    SendFrame,
    validate_client_object,
)
from porch.protocol.codec import loads
from porch.protocol.fields import (
    ACCOUNT_ID_PATTERN,
    CLIENT_ID_PATTERN,
    MAX_ACK_IDS,
    MAX_CIPHERTEXT_KIND,
    MAX_DESTINATIONS,
    MAX_DEVICE_ID,
    MAX_DEVICES_PER_DESTINATION,
    MAX_DEVICES_PER_SEND,
    MAX_ENVELOPE_ID,
    MAX_REGISTRATION_ID,
    MAX_TTL_SECONDS,
)

# The fields' patterns without their anchors, for fullmatch: Python's `$` also matches before
# a final newline, which pydantic's (Rust) `$` does not.
_ACCOUNT = re.compile(ACCOUNT_ID_PATTERN.removeprefix("^").removesuffix("$")).fullmatch
_CLIENT_ID = re.compile(CLIENT_ID_PATTERN.removeprefix("^").removesuffix("$")).fullmatch
# BASE64_PATTERN, checked in two cheaper steps (_is_base64): the alphabet, then the lengths.
_B64_ALPHABET = re.compile(r"[A-Za-z0-9+/]*+").fullmatch
_REJECT_REASONS = frozenset({"too_large", "malformed", "unprocessable"})
_SEND_KEYS = frozenset({"type", "id", "destinations", "shared", "ephemeral", "ttl"})
_DEST_KEYS = frozenset({"account", "devices"})
_COPY_KEYS = frozenset({"device", "registration", "kind", "body"})
_SHARED_KEYS = frozenset({"kind", "body"})
_ACK_KEYS = frozenset({"type", "ids"})
_REJECT_KEYS = frozenset({"type", "ids", "reason"})


class Refused(Exception):
    """The hand check does not accept the frame: the models say why."""


class DeviceCopy:
    """One device of a destination (the model's DeviceMessage): its own ciphertext, or none
    (kind and body None) when it gets the send's shared one."""

    __slots__ = ("body", "device", "kind", "registration")

    def __init__(self, device: int, registration: int, kind: int | None, body: str | None):
        self.device = device
        self.registration = registration
        self.kind = kind
        self.body = body

    @property
    def own(self) -> bool:
        return self.body is not None

    def ciphertext(self) -> tuple[int, str] | None:
        """(kind, body) of the device's own ciphertext; None when it gets the shared one."""
        if self.kind is None or self.body is None:
            return None
        return self.kind, self.body


class SendTo:
    """One destination account and its devices (the model's Destination)."""

    __slots__ = ("account", "devices")

    def __init__(self, account: str, devices: list[DeviceCopy]) -> None:
        self.account = account
        self.devices = devices


class Shared:
    __slots__ = ("body", "kind")

    def __init__(self, kind: int, body: str) -> None:
        self.kind = kind
        self.body = body


class Send:
    """A checked `send` frame (the model's SendFrame)."""

    __slots__ = ("destinations", "ephemeral", "id", "shared", "ttl")
    type: ClassVar[str] = "send"

    def __init__(
        self,
        id: str,
        destinations: list[SendTo],
        shared: Shared | None,
        ephemeral: bool,
        ttl: int | None,
    ) -> None:
        self.id = id
        self.destinations = destinations
        self.shared = shared
        self.ephemeral = ephemeral
        self.ttl = ttl


class Ack:
    __slots__ = ("ids",)
    type: ClassVar[str] = "ack"

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids


class Reject:
    __slots__ = ("ids", "reason")
    type: ClassVar[str] = "reject"

    def __init__(self, ids: list[int], reason: str) -> None:
        self.ids = ids
        self.reason = reason


GatewayFrame = Send | Ack | Reject | AnyClientFrame


def read_client_frame(data: str | bytes) -> GatewayFrame:
    """parse_client_frame for the gateway: the hot frames checked by hand, the rest (auth,
    ping) and every refused frame through the models, which raise the ProtocolError."""
    obj = loads(data)
    if type(obj) is dict:
        kind = obj.get("type")
        try:
            if kind == "send":
                return check_send(obj)
            if kind == "ack":
                return Ack(_ids(obj, _ACK_KEYS))
            if kind == "reject":
                reason = obj.get("reason")
                if type(reason) is not str or reason not in _REJECT_REASONS:
                    raise Refused
                return Reject(_ids(obj, _REJECT_KEYS), reason)
        except Refused:
            # Refused by hand: the models raise the exact error the protocol promises.
            return _from_model(validate_client_object(obj))
    return _from_model(validate_client_object(obj))


def check_send(obj: dict[str, Any]) -> Send:
    """A send frame's fields against SendFrame's bounds; Refused if any is off."""
    if not _SEND_KEYS.issuperset(obj):
        raise Refused
    client_id = obj.get("id")
    if type(client_id) is not str or not _CLIENT_ID(client_id):
        raise Refused
    dests = obj.get("destinations")
    if type(dests) is not list or not 0 < len(dests) <= MAX_DESTINATIONS:
        raise Refused
    destinations: list[SendTo] = []
    accounts: set[str] = set()
    total = 0
    uses_shared = False
    for d in dests:
        if type(d) is not dict or len(d) != 2 or not _DEST_KEYS.issuperset(d):
            raise Refused
        account = d["account"]
        if type(account) is not str or not _ACCOUNT(account) or account in accounts:
            raise Refused
        accounts.add(account)
        entries = d["devices"]
        if type(entries) is not list or not 0 < len(entries) <= MAX_DEVICES_PER_DESTINATION:
            raise Refused
        copies: list[DeviceCopy] = []
        seen: set[int] = set()
        for m in entries:
            copy = _copy(m)
            if copy.device in seen:
                raise Refused
            seen.add(copy.device)
            uses_shared = uses_shared or copy.body is None
            copies.append(copy)
        total += len(copies)
        destinations.append(SendTo(account, copies))
    if total > MAX_DEVICES_PER_SEND:
        raise Refused
    shared = _shared(obj.get("shared"))
    if uses_shared != (shared is not None):
        raise Refused  # a device needs the shared body, or it is given for nobody
    ephemeral = obj.get("ephemeral", False)
    if type(ephemeral) is not bool:
        raise Refused
    ttl = obj.get("ttl")
    if ttl is not None and (type(ttl) is not int or not 1 <= ttl <= MAX_TTL_SECONDS):
        raise Refused
    return Send(client_id, destinations, shared, ephemeral, ttl)


def _copy(m: Any) -> DeviceCopy:
    if type(m) is not dict or not _COPY_KEYS.issuperset(m):
        raise Refused
    device = m.get("device")
    registration = m.get("registration")
    if type(device) is not int or not 1 <= device <= MAX_DEVICE_ID:
        raise Refused
    if type(registration) is not int or not 0 <= registration <= MAX_REGISTRATION_ID:
        raise Refused
    if len(m) == 2:  # device and registration only: the shared ciphertext
        return DeviceCopy(device, registration, None, None)
    if len(m) != 4:  # kind without body, or body without kind
        raise Refused
    kind = m["kind"]
    body = m["body"]
    if type(kind) is not int or not 0 <= kind <= MAX_CIPHERTEXT_KIND or not _is_base64(body):
        raise Refused
    return DeviceCopy(device, registration, kind, body)


def _shared(s: Any) -> Shared | None:
    if s is None:
        return None
    if type(s) is not dict or len(s) != 2 or not _SHARED_KEYS.issuperset(s):
        raise Refused
    kind = s["kind"]
    body = s["body"]
    if type(kind) is not int or not 0 <= kind <= MAX_CIPHERTEXT_KIND or not _is_base64(body):
        raise Refused
    return Shared(kind, body)


def _is_base64(body: Any) -> bool:
    """BASE64_PATTERN, non-empty: groups of four, then 2 or 3 more optionally padded with one
    or two '='; never a remainder of one."""
    if type(body) is not str or not body:
        return False
    core = body.rstrip("=")
    pad = len(body) - len(core)
    rest = len(core) % 4
    if rest == 1 or pad > 2 or (pad and rest == 0):
        return False
    return _B64_ALPHABET(core) is not None


def _ids(obj: dict[str, Any], keys: frozenset[str]) -> list[int]:
    if not keys.issuperset(obj):
        raise Refused
    ids = obj.get("ids")
    if type(ids) is not list or not 0 < len(ids) <= MAX_ACK_IDS:
        raise Refused
    for i in ids:
        if type(i) is not int or not 1 <= i <= MAX_ENVELOPE_ID:
            raise Refused
    return ids


def _from_model(frame: AnyClientFrame) -> GatewayFrame:
    """A frame the models accepted, as the gateway's objects where it has one (the hand
    check and the models agree, so this is for auth and ping: the rest is a safety net)."""
    if isinstance(frame, SendFrame):
        return Send(
            frame.id,
            [
                SendTo(
                    d.account,
                    [
                        DeviceCopy(m.device, m.registration, *(m.ciphertext() or (None, None)))
                        for m in d.devices
                    ],
                )
                for d in frame.destinations
            ],
            None if frame.shared is None else Shared(frame.shared.kind, frame.shared.body),
            frame.ephemeral,
            frame.ttl,
        )
    if isinstance(frame, AckFrame):
        return Ack(list(frame.ids))
    if isinstance(frame, RejectFrame):
        return Reject(list(frame.ids), frame.reason)
    return frame
