"""Linking devices (spec C): provisioning channels, provisioning codes, linking, device lists.

The new device opens a channel (no account yet) and shows its id and public key; the primary
device, signed in, fetches a provisioning code and puts the encrypted ProvisionMessage into the
channel; the new device reads it once, then links itself with the code. Channels and codes
live in the store, so any node can answer any step; the server sees only ciphertext and hashes
(docs/security.md). The account's signed device list, checked against its master key here, is
what the send check counts once it exists (store/devices.py current_devices).
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import logging
import re
import secrets
import uuid
from dataclasses import dataclass

from porch.crypto.errors import SignatureError
from porch.crypto.signing import DeviceList, verify_device_list
from porch.protocol.codec import b64decode
from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.bus.base import Bus, DeviceEvent
from porch.server.clock import Clock
from porch.server.ratelimit import Limit, RateLimiter, too_many
from porch.server.services.accounts import MAX_DEVICE_NAME, Principal, hash_secret
from porch.server.settings import Settings
from porch.server.store.base import (
    CodeNotFound,
    DeviceListStale,
    Store,
    StoredDeviceList,
    TooManyDevices,
)

log = logging.getLogger("porch.devices")

CHANNEL_TTL_MS = 10 * 60_000
CODE_TTL_MS = 10 * 60_000
MAX_CHANNEL_BODY = 16 * 1024  # raw bytes; a v1 provisioning envelope is about 1.1 KiB
MAX_WAIT_SECONDS = 30
POLL_SECONDS = 0.25  # the long poll reads the store this often (any node may fill it)
# Long polls open at once from one address (on this node). A new device waits on one channel
# at a time; without a cap, one address holding 1000 waits made the node read the store 4000
# times a second, and every other request waited (docs/protocol.md, "Linked devices").
MAX_WAITS_PER_ADDRESS = 8
MAX_LIST_VERSION = 2**63 - 1  # the BIGINT column; a client adds one per change
# How far past the stored version a new list may jump. Without it one PUT of version 2**63-1
# froze the account's list for good (no higher version exists), so no device could be
# removed from it again; a client adds one per change.
MAX_LIST_STEP = 1 << 20
CHANNEL_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    expires_ms: int


@dataclass(frozen=True, slots=True)
class ProvisioningCode:
    code: str
    expires_ms: int


@dataclass(frozen=True, slots=True)
class Linked:
    account_id: str
    device_id: int
    password: str
    registration_id: int


def _hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("ascii")).digest()


def _channel_hash(channel_id: str) -> bytes:
    if not CHANNEL_ID_RE.match(channel_id):
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such provisioning channel")
    return _hash(channel_id)


def _gone() -> ProtocolError:
    return ProtocolError(
        ErrorCode.NOT_FOUND, "no such provisioning channel, or it expired; start linking again"
    )


class DeviceService:
    def __init__(
        self, store: Store, bus: Bus, limiter: RateLimiter, clock: Clock, settings: Settings
    ) -> None:
        self._store = store
        self._bus = bus
        self._limiter = limiter
        self._clock = clock
        self._max_devices = settings.max_devices
        self._channels = Limit.parse(settings.limit_provisioning_per_address)
        self._links = Limit.parse(settings.limit_link_per_address)
        self._waits: dict[str, int] = {}  # address -> long polls open now

    # Channels ------------------------------------------------------------------------------

    async def open_channel(self, address: str) -> Channel:
        await self._limiter.hit("provisioning-address", address, self._channels)
        # A UUID4: the provisioning URI carries the id as `uuid` (crypto/provisioning.py).
        channel_id = str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))
        expires = self._clock.now_ms() + CHANNEL_TTL_MS
        await self._store.open_channel(_hash(channel_id), expires)
        return Channel(channel_id, expires)

    async def wait_channel(self, channel_id: str, wait_seconds: int, address: str) -> str | None:
        """The body once it is there (then the channel is gone), None after wait_seconds."""
        id_hash = _channel_hash(channel_id)
        open_now = self._waits.get(address, 0)
        if open_now >= MAX_WAITS_PER_ADDRESS:
            raise too_many(
                "device-linking waits open from this address",
                MAX_WAIT_SECONDS,
                limit=MAX_WAITS_PER_ADDRESS,
            )
        self._waits[address] = open_now + 1
        try:
            return await self._wait(id_hash, wait_seconds)
        finally:
            left = self._waits.pop(address) - 1
            if left:
                self._waits[address] = left

    async def _wait(self, id_hash: bytes, wait_seconds: int) -> str | None:
        deadline = asyncio.get_running_loop().time() + min(wait_seconds, MAX_WAIT_SECONDS)
        while True:
            exists, body = await self._store.take_channel(id_hash, self._clock.now_ms())
            if not exists:
                raise _gone()
            if body is not None:
                return body
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return None
            await asyncio.sleep(min(POLL_SECONDS, left))

    async def fill_channel(self, principal: Principal, channel_id: str, body: str) -> None:
        id_hash = _channel_hash(channel_id)
        try:
            raw = b64decode(body)
        except (ValueError, binascii.Error):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "body must be base64") from None
        if not raw or len(raw) > MAX_CHANNEL_BODY:
            raise ProtocolError(
                ErrorCode.REQUEST_TOO_LARGE,
                f"a provisioning message is 1..{MAX_CHANNEL_BODY} bytes",
            )
        filled = await self._store.fill_channel(id_hash, body, self._clock.now_ms())
        if filled is None:
            raise _gone()
        if not filled:
            raise ProtocolError(
                ErrorCode.CHANNEL_FILLED, "another device answered this provisioning channel"
            )

    # Codes and linking ---------------------------------------------------------------------

    async def provisioning_code(self, principal: Principal) -> ProvisioningCode:
        await self._check_room(principal.account_id)
        code = secrets.token_urlsafe(32)
        expires = self._clock.now_ms() + CODE_TTL_MS
        await self._store.put_provisioning_code(_hash(code), principal.account_id, expires)
        return ProvisioningCode(code, expires)

    async def _check_room(self, account_id: str) -> None:
        if len(await self._store.list_devices(account_id)) >= self._max_devices:
            raise self._too_many()

    def _too_many(self) -> ProtocolError:
        return ProtocolError(
            ErrorCode.TOO_MANY_DEVICES,
            f"an account has at most {self._max_devices} devices; remove one "
            "(porch devices remove ID) before linking another",
            max_devices=self._max_devices,
        )

    async def link(self, code: str, name: str, address: str) -> Linked:
        await self._limiter.hit("link-address", address, self._links)
        if not CODE_RE.match(code):
            raise ProtocolError(ErrorCode.CODE_INVALID, "this is not a provisioning code")
        password = secrets.token_urlsafe(32)
        registration_id = secrets.randbelow(2**31 - 1) + 1
        try:
            linked = await self._store.link_device(
                _hash(code),
                self._clock.now_ms(),
                hash_secret(password),
                registration_id,
                name.strip()[:MAX_DEVICE_NAME],
                self._max_devices,
            )
        except CodeNotFound:
            raise ProtocolError(
                ErrorCode.CODE_INVALID,
                "the provisioning code is unknown, used or expired; link again from the "
                "other device",
            ) from None
        except TooManyDevices:
            raise self._too_many() from None
        await self._bus.account_changed(linked.account_id)
        log.info("linked device %d to an account", linked.device_id)
        return Linked(linked.account_id, linked.device_id, password, registration_id)

    # Device lists --------------------------------------------------------------------------

    async def put_list(
        self, principal: Principal, list_b64: str, signature_b64: str, *, leaving: bool = False
    ) -> None:
        """Store the next signed list; ``leaving``: the list of a device that removes itself,
        which names every other device and not the caller (:meth:`leave`)."""
        account = await self._store.get_account(principal.account_id)
        if account is None:
            raise ProtocolError(ErrorCode.AUTH_FAILED, "this account no longer exists")
        if account.master_key is None:
            raise ProtocolError(ErrorCode.NO_KEYS, "upload this device's keys before its list")
        try:
            payload = b64decode(list_b64)
            parsed = verify_device_list(account.master_key, payload, signature_b64)
        except (ValueError, binascii.Error, SignatureError):
            raise ProtocolError(
                ErrorCode.BAD_SIGNATURE,
                "the device list is malformed or not signed by this account's master key",
            ) from None
        await self._check_listed(principal, parsed, leaving=leaving)
        current = await self._store.get_device_list(principal.account_id)
        stored = 0 if current is None else current.version
        if parsed.version > stored + MAX_LIST_STEP:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"the next device list is version {stored + 1} (at most {MAX_LIST_STEP} "
                "above the stored one); fetch the list, then publish the next version",
                version=stored,
            )
        try:
            await self._store.put_device_list(
                principal.account_id,
                parsed.version,
                payload,
                b64decode(signature_b64),
                [d.device_id for d in parsed.devices],
            )
        except DeviceListStale:
            current = await self._store.get_device_list(principal.account_id)
            raise ProtocolError(
                ErrorCode.STALE_DEVICE_LIST,
                "the account has a device list of this version or a newer one; fetch it, "
                "then publish the next version",
                version=None if current is None else current.version,
            ) from None
        await self._bus.account_changed(principal.account_id)

    async def leave(self, principal: Principal, list_b64: str, signature_b64: str) -> None:
        """The calling device removes itself (a browser's "Sign out"): the next signed list,
        without it, is stored first, then the device and its credential go, as a removal by
        another device does (docs/protocol.md, "Linked devices"). The account's only device
        cannot leave: no list can be empty, and the account would be left with no device."""
        others = [
            d
            for d in await self._store.list_devices(principal.account_id)
            if d.device_id != principal.device_id
        ]
        if not others:
            raise ProtocolError(
                ErrorCode.FORBIDDEN,
                "this is the account's only device, so it cannot remove itself; sign out "
                "locally, or link another device first",
            )
        await self.put_list(principal, list_b64, signature_b64, leaving=True)
        if not await self._store.delete_device(principal.account_id, principal.device_id):
            raise ProtocolError(ErrorCode.NOT_FOUND, "this device is no longer on the account")
        await self._bus.account_changed(principal.account_id)
        await self._bus.publish(
            principal.account_id, principal.device_id, DeviceEvent(revoked=True)
        )
        log.info("device %d left its account", principal.device_id)

    async def _check_listed(
        self, principal: Principal, parsed: DeviceList, *, leaving: bool = False
    ) -> None:
        if parsed.account_id != principal.account_id:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "the device list is another account's")
        if parsed.version > MAX_LIST_VERSION:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"versions are 1..{MAX_LIST_VERSION}")
        if leaving and principal.device_id in parsed.device_ids:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "a device that removes itself publishes a list without it"
            )
        if not leaving and principal.device_id not in parsed.device_ids:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "the device list must list this device")
        devices = {d.device_id: d for d in await self._store.list_devices(principal.account_id)}
        wrong = []
        for listed in parsed.devices:
            d = devices.get(listed.device_id)
            if (
                d is None
                or d.ed25519 is None
                or d.registration_id != listed.registration_id
                or b64decode(d.ed25519) != b64decode(listed.ed25519)
            ):
                wrong.append(listed.device_id)
        if wrong:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                "the device list names devices that do not exist with those keys",
                devices=wrong[:64],
            )

    async def device_list(self, account_id: str) -> StoredDeviceList | None:
        return await self._store.get_device_list(account_id)
