"""The store interfaces: what services may ask of persistence, nothing about SQL.

Per domain, as Synapse composes its DataStore from DeviceInboxStore, EndToEndKeyStore and the
rest: AccountStore (accounts, devices, blocks), KeyStore (identity and one-time keys),
RegistrationStore (verification sessions, per-number code schedules), MessageStore (device
queues, send idempotency, expiry), GroupStore (groups, members, join requests), MediaStore
(upload slots, blobs and their downloads: media_records.py). Store is all
of them plus the lifecycle, and is what create_app hands the services. Every method is one
transaction. Implementations: sqlite.SqliteStore (default) and postgres.PostgresStore, each
composed of the same per-domain classes (accounts.py, keys.py, registration.py, messages.py,
groups.py) over its own executor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol, Self

from porch.server.domain import Envelope
from porch.server.store.errors import StoreError as StoreError
from porch.server.store.media_records import MediaStore
from porch.server.store.push import PushStore
from porch.server.store.records import (
    ADMIN as ADMIN,
)
from porch.server.store.records import (
    MEMBER as MEMBER,
)
from porch.server.store.records import (
    Account as Account,
)
from porch.server.store.records import (
    Acknowledged as Acknowledged,
)
from porch.server.store.records import (
    ClaimedDevice as ClaimedDevice,
)
from porch.server.store.records import (
    CodeSlot as CodeSlot,
)
from porch.server.store.records import (
    Device as Device,
)
from porch.server.store.records import (
    DeviceAuth as DeviceAuth,
)
from porch.server.store.records import (
    Group as Group,
)
from porch.server.store.records import (
    GroupChange as GroupChange,
)
from porch.server.store.records import (
    GroupEdit as GroupEdit,
)
from porch.server.store.records import (
    GroupMember as GroupMember,
)
from porch.server.store.records import (
    LinkedDevice as LinkedDevice,
)
from porch.server.store.records import (
    OutgoingCopy as OutgoingCopy,
)
from porch.server.store.records import (
    OutgoingDestination as OutgoingDestination,
)
from porch.server.store.records import (
    OutgoingMessage as OutgoingMessage,
)
from porch.server.store.records import (
    PreKey as PreKey,
)
from porch.server.store.records import (
    RegistrationSession as RegistrationSession,
)
from porch.server.store.records import (
    SharedPayload as SharedPayload,
)
from porch.server.store.records import (
    StoredDeviceList as StoredDeviceList,
)
from porch.server.store.records import (
    StoredMessage as StoredMessage,
)
from porch.server.store.records import (
    SweepResult as SweepResult,
)


class UsernameTaken(StoreError):
    """Another account has this username."""


class IdentityKeyTaken(StoreError):
    """Another device already has this curve25519 or ed25519 identity key."""


class GroupExists(StoreError):
    """A group with this id exists already."""


class NoSuchAccount(StoreError):
    """An account to be added to a group does not exist or has no keys."""


class TooManyGroups(StoreError):
    """An account to be added to a group is in as many groups as it may be."""

    def __init__(self, account_id: str) -> None:
        super().__init__("an account is in too many groups")
        self.account_id = account_id


class RevisionConflict(StoreError):
    """The group's revision moved between the read and the write (compare-and-set)."""


class CodeNotFound(StoreError):
    """No live provisioning code has this hash (unknown, used or expired)."""


class TooManyDevices(StoreError):
    """The account has its maximum number of devices already."""


class DeviceListStale(StoreError):
    """The stored device list has this version or a higher one."""


class AccountStore(Protocol):
    """Accounts, their devices and their blocks (store/accounts.py)."""

    async def secret(self, name: str, candidate: bytes) -> bytes:
        """The stored secret called name; candidate is stored first if there is none, so
        every node sharing the database gets the same value."""
        ...

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
    async def set_username(self, account_id: str, username: str | None) -> None:
        """Raises UsernameTaken when another account has it."""
        ...

    async def set_discoverable(self, account_id: str, discoverable: bool) -> None: ...
    async def get_device_auth(self, account_id: str, device_id: int) -> DeviceAuth | None: ...
    async def list_devices(self, account_id: str) -> list[Device]:
        """Ordered by device id."""
        ...

    async def delete_device(self, account_id: str, device_id: int) -> bool: ...
    async def touch_device(self, account_id: str, device_id: int, day: int) -> None:
        """Record the day (epoch days) the device was last seen; writes only on a new day."""
        ...

    async def set_block(self, account_id: str, blocked_id: str, blocked: bool) -> None: ...
    async def list_blocks(self, account_id: str) -> list[str]: ...


class KeyStore(Protocol):
    """Device identity keys, one-time keys and fallback keys (store/keys.py)."""

    async def set_identity(
        self,
        account_id: str,
        device_id: int,
        master_key: str,
        curve25519: str,
        ed25519: str,
        signature: str,
    ) -> None:
        """Raises IdentityKeyTaken when another device has either key."""
        ...

    async def add_one_time_keys(
        self, account_id: str, device_id: int, keys: Sequence[PreKey]
    ) -> int: ...
    async def count_one_time_keys(self, account_id: str, device_id: int) -> int: ...
    async def claim_keys(
        self, account_id: str, device_ids: Sequence[int] | None
    ) -> list[ClaimedDevice]:
        """For each device with keys (of device_ids, if given), ordered by device id: its
        lowest one-time key, deleted as it is handed out, else its fallback key, else None."""
        ...


class RegistrationStore(Protocol):
    """Verification sessions and per-number code schedules (store/registration.py)."""

    async def claim_code_send(
        self, phone: str, now: int, interval_ms: Callable[[int], int], quiet_ms: int
    ) -> CodeSlot:
        """Atomically: refuse if the number's next code is not due yet; otherwise count one
        more send in the number's run (a run ends quiet_ms after its last due time) and set
        the next due time to now + interval_ms(sends)."""
        ...

    async def put_registration_session(self, session: RegistrationSession) -> None:
        """Insert the session, or replace the one with the same id_hash."""
        ...

    async def get_registration_session(self, id_hash: bytes) -> RegistrationSession | None: ...
    async def count_session_attempt(self, id_hash: bytes) -> int:
        """Add one attempt to the session and return the new count (0: no such session)."""
        ...

    async def consume_registration_session(self, id_hash: bytes) -> bool:
        """Delete the session and every other session of its number (once the number has
        registered, none of them means anything). False if the session was already gone, so
        that of two verifies of one code only one goes on to register."""
        ...


class MessageStore(Protocol):
    """Device queues, send idempotency and expiry (store/messages.py)."""

    async def store_message(
        self,
        sender_account: str,
        sender_device: int,
        client_id: str,
        destinations: Sequence[OutgoingDestination],
        shared: SharedPayload | None,
        now: int,
        expires: int,
        envelope_expires: int | None = None,
    ) -> StoredMessage:
        """One envelope per copy of every destination, the shared payload (once, if given)
        and the send's idempotency record, in one transaction; a client_id seen before stores
        nothing and answers with the first send's timestamp. Sends commit in the order they
        were made. The envelopes returned carry the body they deliver (the shared one for
        copies without their own). Every copy without a body needs `shared`.

        Everything expires at `expires` (the retention), except that a send with a ttl gives
        its envelopes and payload the earlier `envelope_expires` (which they carry too); its
        idempotency record keeps `expires`, so a late resend is still known (spec §7)."""
        ...

    def store_messages(
        self, sends: Sequence[OutgoingMessage]
    ) -> asyncio.Future[list[StoredMessage | Exception]]:
        """Several sends in one store call (those of one event-loop tick), each as
        store_message would store it, in their order; each outcome is its StoredMessage or,
        for a send that failed alone, its exception. Called on the event loop; the one future
        resolves once every one of them has committed or failed."""
        ...

    async def fetch_envelopes(
        self,
        account_id: str,
        device_id: int,
        limit: int,
        now: int | None = None,
        after: int = 0,
    ) -> list[Envelope]:
        """The device's oldest envelopes with an id above `after`, up to limit, by id. With
        now, those expired by then are never returned: they are deleted (with their orphaned
        payloads) as they are met, and the page is filled from behind them, so a short page
        still means the queue's end."""
        ...

    async def delete_envelopes(self, account_id: str, device_id: int, ids: Sequence[int]) -> int:
        """Delete the device's envelopes among ids, and every shared payload none points at
        any more. Returns how many envelopes were deleted."""
        ...

    def delete_many(self, acks: Sequence[Acknowledged]) -> asyncio.Future[list[int | Exception]]:
        """Several devices' delete_envelopes in one store call (those of one event-loop
        tick), each failing alone, as store_messages does for sends."""
        ...

    async def queue_depth(self) -> int: ...
    async def sweep(self, now: int) -> SweepResult: ...


class GroupStore(Protocol):
    """Groups, their members, join requests and invite hashes (store/groups.py)."""

    async def create_group(
        self,
        group_id: str,
        state: bytes,
        members_can_edit: bool,
        join_approval: bool,
        creator: str,
        members: Sequence[str],
        max_groups: int,
    ) -> Group:
        """The group at revision 1, the creator its admin and members (which must not include
        the creator) its members. Raises GroupExists, NoSuchAccount or TooManyGroups (an
        account, the creator included, already in max_groups groups)."""
        ...

    async def get_group(self, group_id: str) -> Group | None: ...
    async def list_groups(self, account_id: str) -> list[tuple[str, int]]:
        """(group id, revision) of every group the account is a member of, by id."""
        ...

    async def group_by_invite(self, invite_hash: bytes) -> str | None: ...
    async def change_group(
        self,
        group_id: str,
        decide: Callable[[Group], GroupEdit | None],
        max_groups: int,
    ) -> GroupChange | None:
        """In one transaction: lock the group, decide(group) -> the edit (None: nothing to
        do; an exception aborts and propagates), check the added accounts (NoSuchAccount,
        TooManyGroups), apply it with a compare-and-set on the revision, and delete the
        group once it has no members. None if there is no such group. decide runs on the
        store's thread: it must be quick and must not do I/O."""
        ...


class DeviceStore(Protocol):
    """Provisioning channels and codes, linking, signed device lists (store/devices.py)."""

    async def open_channel(self, id_hash: bytes, expires: int) -> None: ...
    async def take_channel(self, id_hash: bytes, now: int) -> tuple[bool, str | None]:
        """(exists, body): a live channel's body, deleted as it is read (once); (True, None)
        while it is empty; (False, None) when unknown or expired."""
        ...

    async def fill_channel(self, id_hash: bytes, body: str, now: int) -> bool | None:
        """Put the body into an empty live channel: True; False if it is filled already;
        None if unknown or expired."""
        ...

    async def put_provisioning_code(
        self, code_hash: bytes, account_id: str, expires: int
    ) -> None: ...

    async def link_device(
        self,
        code_hash: bytes,
        now: int,
        password_hash: bytes,
        registration_id: int,
        name: str,
        max_devices: int,
    ) -> LinkedDevice:
        """Use up the code and add the account's next device (id above every id it ever had),
        in one transaction. CodeNotFound, TooManyDevices (the code is then kept)."""
        ...

    async def current_devices(self, account_id: str) -> list[Device]:
        """The devices a send must address: those with keys and, once the account has a
        signed device list, in it. Ordered by device id."""
        ...

    async def get_device_list(self, account_id: str) -> StoredDeviceList | None: ...
    async def put_device_list(
        self,
        account_id: str,
        version: int,
        payload: bytes,
        signature: bytes,
        device_ids: Sequence[int],
    ) -> None:
        """Store the list (and its device ids) if version is above the stored one, atomically
        (DeviceListStale otherwise). The service has checked the signature and the devices."""
        ...

    async def sweep_provisioning(self, now: int) -> int:
        """Delete expired channels and codes; how many."""
        ...


class Store(
    AccountStore,
    KeyStore,
    RegistrationStore,
    MessageStore,
    GroupStore,
    DeviceStore,
    MediaStore,
    PushStore,
    Protocol,
):
    """Every domain, and the lifecycle. Entered (`async with store:`) before use: that opens
    it and starts its writer, if it has one; leaving closes it, after every waiting call has
    been answered (lifecycle.py)."""

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...
    async def ping(self) -> None:
        """Raise unless the store can answer calls now (readiness)."""
        ...
