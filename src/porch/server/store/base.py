"""The store interface: what services may ask of persistence, nothing about SQL.

Every method is one transaction. Implementations: sqlite.SqliteStore (default). Services receive
a Store and never see a connection, so the PostgreSQL store slots in behind the same methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class StoreError(Exception):
    """Base of store failures that services translate into API errors."""


class UsernameTaken(StoreError):
    """Another account has this username."""


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
class Verification:
    phone: str
    code_hash: bytes | None
    expires: int
    attempts: int


@dataclass(frozen=True, slots=True)
class OutgoingCopy:
    """One ciphertext addressed to one recipient device, as accepted from a send frame."""

    device_id: int
    kind: int
    body: str


@dataclass(frozen=True, slots=True)
class Envelope:
    id: int
    account_id: str
    device_id: int
    sender_account: str
    sender_device: int
    ts: int
    kind: int
    body: str


@dataclass(frozen=True, slots=True)
class StoredMessage:
    ts: int
    envelopes: tuple[Envelope, ...]
    duplicate: bool


@dataclass(frozen=True, slots=True)
class SweepResult:
    envelopes: int
    sent_records: int
    verifications: int


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def secret(self, name: str, candidate: bytes) -> bytes:
        """The stored secret called name; candidate is stored first if there is none, so
        every node sharing the database gets the same value."""
        ...

    # Accounts and devices
    async def register(
        self,
        phone: str,
        password_hash: bytes,
        registration_id: int,
        name: str,
        now: int,
        new_account_id: str,
    ) -> tuple[str, int, bool]:
        """Create the account, or replace every device of an existing one. Returns
        (account_id, device_id, replaced)."""
        ...

    async def get_account(self, account_id: str) -> Account | None: ...
    async def get_account_by_phone(self, phone: str) -> Account | None: ...
    async def get_account_by_username(self, username: str) -> Account | None: ...
    async def set_username(self, account_id: str, username: str | None) -> None: ...
    async def set_discoverable(self, account_id: str, discoverable: bool) -> None: ...
    async def get_device_auth(self, account_id: str, device_id: int) -> DeviceAuth | None: ...
    async def list_devices(self, account_id: str) -> list[Device]: ...
    async def delete_device(self, account_id: str, device_id: int) -> bool: ...
    async def touch_device(self, account_id: str, device_id: int, day: int) -> None: ...

    # Keys
    async def set_identity(
        self,
        account_id: str,
        device_id: int,
        master_key: str,
        curve25519: str,
        ed25519: str,
        signature: str,
    ) -> None: ...
    async def add_one_time_keys(
        self, account_id: str, device_id: int, keys: Sequence[PreKey]
    ) -> int: ...
    async def count_one_time_keys(self, account_id: str, device_id: int) -> int: ...
    async def claim_keys(
        self, account_id: str, device_ids: Sequence[int] | None
    ) -> list[ClaimedDevice]: ...

    # Verification codes
    async def put_verification(self, verification: Verification) -> None: ...
    async def get_verification(self, phone: str) -> Verification | None: ...
    async def count_verification_attempt(self, phone: str) -> int: ...
    async def delete_verification(self, phone: str) -> None: ...

    # Blocks
    async def set_block(self, account_id: str, blocked_id: str, blocked: bool) -> None: ...
    async def list_blocks(self, account_id: str) -> list[str]: ...

    # Messages
    async def store_message(
        self,
        sender_account: str,
        sender_device: int,
        client_id: str,
        recipient: str,
        copies: Sequence[OutgoingCopy],
        now: int,
        expires: int,
    ) -> StoredMessage: ...
    async def fetch_envelopes(
        self, account_id: str, device_id: int, limit: int
    ) -> list[Envelope]: ...
    async def delete_envelopes(
        self, account_id: str, device_id: int, ids: Sequence[int]
    ) -> int: ...
    async def queue_depth(self) -> int: ...
    async def sweep(self, now: int) -> SweepResult: ...
