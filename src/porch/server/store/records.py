"""The records the store interfaces (base.py) take and return: frozen value objects, nothing
about SQL. Split from base.py so that the interfaces read as one page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from porch.server.domain import Envelope


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    phone: str
    username: str | None
    discoverable: bool
    master_key: str | None
    created: int


@dataclass(frozen=True, slots=True)
class Device:
    account_id: str
    device_id: int
    registration_id: int
    name: str
    curve25519: str | None
    ed25519: str | None
    signature: str | None
    created: int
    last_seen_day: int

    @property
    def has_keys(self) -> bool:
        return self.curve25519 is not None


@dataclass(frozen=True, slots=True)
class DeviceAuth:
    password_hash: bytes
    registration_id: int


@dataclass(frozen=True, slots=True)
class PreKey:
    key_id: str
    curve25519: str
    signature: str
    fallback: bool


@dataclass(frozen=True, slots=True)
class ClaimedDevice:
    device: Device
    one_time_key: PreKey | None


@dataclass(frozen=True, slots=True)
class RegistrationSession:
    """One code request and the guesses against its code (docs/security.md)."""

    id_hash: bytes  # SHA-256 of the session id the client holds; the id itself is not kept
    phone: str
    code_hash: bytes | None  # None when the SMS provider owns the code
    attempts: int
    expires: int


@dataclass(frozen=True, slots=True)
class CodeSlot:
    """The answer to "may this number be sent a code now?"."""

    granted: bool
    sends: int  # codes sent to the number in its current run, a granted one included
    next_code: int  # epoch ms from which the number may be sent its next code


# Not frozen, like Envelope (domain.py): one of each is built per send or per device on the
# message path, where a frozen dataclass's object.__setattr__ per field cost 0.85 against
# 0.16 µs for eight fields (2026-12-03, issue 10). Nothing changes one after it is built.
@dataclass(slots=True)
class OutgoingCopy:
    """One recipient device of a send: its own ciphertext, or (kind and body None) the
    send's shared one (SharedPayload)."""

    device_id: int
    kind: int | None
    body: str | None

    @classmethod
    def of(cls, device_id: int, ciphertext: tuple[int, str] | None) -> OutgoingCopy:
        if ciphertext is None:
            return cls(device_id, None, None)
        return cls(device_id, ciphertext[0], ciphertext[1])


@dataclass(slots=True)
class OutgoingDestination:
    """One destination account of a send and its devices (spec A)."""

    account_id: str
    copies: tuple[OutgoingCopy, ...]


@dataclass(slots=True)
class SharedPayload:
    """One ciphertext for every copy without its own (Megolm): one `payloads` row, however
    many envelopes point at it (docs/design.md, "Store layout")."""

    kind: int
    body: str


@dataclass(slots=True)
class OutgoingMessage:
    """One send to store: store_message's arguments, for store_messages."""

    sender_account: str
    sender_device: int
    client_id: str
    destinations: Sequence[OutgoingDestination]
    shared: SharedPayload | None
    now: int
    expires: int
    envelope_expires: int | None = None  # a ttl send's (spec §7)


@dataclass(slots=True)
class Acknowledged:
    """The envelopes one device is done with: delete_envelopes's arguments, for delete_many."""

    account_id: str
    device_id: int
    ids: Sequence[int]


@dataclass(slots=True)
class StoredMessage:
    ts: int
    envelopes: tuple[Envelope, ...]
    duplicate: bool


@dataclass(frozen=True, slots=True)
class LinkedDevice:
    account_id: str
    device_id: int


@dataclass(frozen=True, slots=True)
class StoredDeviceList:
    version: int
    payload: bytes  # the signed bytes (crypto/signing.py device_list_payload)
    signature: bytes


@dataclass(frozen=True, slots=True)
class SweepResult:
    envelopes: int
    sent_records: int
    verifications: int  # registration sessions and per-number code schedules
    payloads: int = 0  # shared payloads expired or no longer pointed at
    media_blobs: int = 0  # blobs and unfinished uploads deleted (services/media.py)
    media_bytes: int = 0  # their sizes


ADMIN = "admin"
MEMBER = "member"


@dataclass(frozen=True, slots=True)
class GroupMember:
    account_id: str
    role: str  # ADMIN or MEMBER
    since: int  # the revision that added it (the creator: 0): orders members by seniority


@dataclass(frozen=True, slots=True)
class Group:
    """A group as stored (spec B): nothing but what docs/security.md lists."""

    id: str
    revision: int
    state: bytes  # sealed by the clients: opaque here
    state_revision: int  # the revision the state was stored under (its sealing binds it)
    members_can_edit: bool
    join_approval: bool
    members: tuple[GroupMember, ...]  # ordered by (since, account_id)
    pending: tuple[str, ...]  # join requests, oldest first
    invite_hash: bytes | None  # SHA-256 of the active invite token

    def member(self, account_id: str) -> GroupMember | None:
        for m in self.members:
            if m.account_id == account_id:
                return m
        return None

    @property
    def admins(self) -> tuple[str, ...]:
        return tuple(m.account_id for m in self.members if m.role == ADMIN)


@dataclass(frozen=True, slots=True)
class GroupEdit:
    """One change to a group, decided against the locked row; applying it adds one to the
    revision. Accounts in `add` must exist with keys and have room for one more group."""

    state: bytes | None = None
    members_can_edit: bool | None = None
    join_approval: bool | None = None
    add: tuple[str, ...] = ()  # new members, with role MEMBER
    remove: tuple[str, ...] = ()
    roles: tuple[tuple[str, str], ...] = ()  # (account, role) of existing members
    request: tuple[str, ...] = ()  # new join requests
    drop_requests: tuple[str, ...] = ()
    invite_hash: bytes | None = None  # a new invite token's hash (replaces the old one)
    revoke_invite: bool = False


@dataclass(frozen=True, slots=True)
class GroupChange:
    before: Group
    after: Group | None  # None: the last member left and the group is gone

    @property
    def changed(self) -> bool:
        return self.after is None or self.after.revision != self.before.revision
