"""The async SDK client: registration, a self-healing connection, a durable outbox, E2E.

    async with Client(profile_dir) as client:
        await client.send_text("+14155550100", "hello")
        async for event in client.events():
            ...

Inside, one task group runs the connection (reconnecting with exponential backoff and jitter)
and the outbox (every message is written locally first and resent until the server
acknowledges it; the server deduplicates by client message id). Received envelopes are
decrypted, stored and only then acknowledged, so nothing is lost between the two sides, and a
redelivered envelope is recognised by its id before decryption (ARCHITECTURE.md, principle 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import phonenumbers

from porch.client import retry
from porch.client.api import Bundle, Credentials, HttpApi
from porch.client.errors import (
    ClientCode,
    ClientError,
    IdentityError,
    MessageTooLong,
    NotRegistered,
    ProfileError,
    RecipientNotFound,
    SendFailed,
    ServerError,
    ServerUnreachable,
    Timeout,
    UsageError,
)
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
from porch.client.ownership import ProfileLock
from porch.client.profile import ProfileConfig, ensure_private_dir
from porch.client.profile import open_store as _open_store
from porch.client.shared import OutboxEntry, ReceivedMessage
from porch.client.store import Conversation, HistoryMessage, OutboxItem, PeerDeviceRow
from porch.client.transport import ConnectionClosed, NetworkTransport, Transport, WebSocketLike
from porch.crypto.content import (
    MAX_TEXT_BYTES,
    Receipt,
    Retry,
    Text,
    Typing,
    Unknown,
    decode_content,
    encode_content,
)
from porch.crypto.errors import CryptoError, SignatureError
from porch.crypto.olm import OlmCiphertext, OlmMachine
from porch.crypto.signing import MasterKey, verify_device_binding, verify_one_time_key
from porch.protocol import client_frames as cf
from porch.protocol.close_codes import CloseCode
from porch.protocol.codec import b64decode, b64encode
from porch.protocol.frames import ACCOUNT_ID_PATTERN, MAX_ACK_IDS, MAX_DEVICE_ID, MAX_ENVELOPE_ID

log = logging.getLogger("porch.client")

ONE_TIME_KEYS_TARGET = 50
USERNAME_RE = re.compile(r"^[a-z][a-z0-9_]{2,31}$")  # as the server checks it (accounts.py)
ONE_TIME_KEYS_LOW = 20
MAX_INFLIGHT = 128
ACK_BATCH = 128
ACK_DELAY = 0.02
BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0
AUTH_TIMEOUT = 15.0
SEEN_RETENTION_MS = 45 * 86_400_000
# How often the processes on one profile look at the store they share (docs/design.md): the
# owner for others' outbox rows, a relay for new messages, and faster while it waits on a send.
OWNER_POLL = 0.1
RELAY_POLL = 0.2
RELAY_WAIT_POLL = 0.05
PERMANENT_SEND_ERRORS = {"unknown_recipient", "bad_frame", "frame_too_large", "forbidden"}
DEVICE_SEND_ERRORS = {"mismatched_devices", "stale_devices"}


@dataclass(frozen=True, slots=True)
class SendResult:
    id: str
    ts: int


@dataclass(slots=True)
class _DeviceFix:
    missing: set[int]
    extra: set[int]
    stale: set[int]


_ACCOUNT_ID = re.compile(ACCOUNT_ID_PATTERN)


def _is_int(value: object, low: int = 0, high: int = 2**63 - 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def normalize_phone(raw: str) -> str:
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise UsageError(f"{raw!r} is not a phone number; use E.164, like +14155550100") from None
    if not phonenumbers.is_valid_number(number):
        raise UsageError(f"{raw!r} is not a valid phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


class Client:
    def __init__(
        self,
        profile_dir: Path,
        *,
        transport: Transport | None = None,
        server: str | None = None,
    ) -> None:
        self.profile_dir = Path(profile_dir)
        self.config = ProfileConfig.load(self.profile_dir)
        if server:
            self.config.server = server  # this run only; the profile keeps its own
        self._transport = transport or NetworkTransport()
        self._store, sealer = _open_store(self.profile_dir)
        password = self._store.get_secret("password")
        pickled = self._store.get_pickle("olm_account")
        if password is None or pickled is None:
            raise NotRegistered(f"the profile in {self.profile_dir} is incomplete; register again")
        self._pickle_key = sealer.subkey("olm-pickle")
        self._olm = self._load_olm(pickled)
        self._lock = ProfileLock(self.profile_dir)
        self._outbox_seq = 0
        self._relay_row = 0
        self._names_tried: set[str] = set()
        self.credentials = Credentials(
            self.config.account_id, self.config.device_id, password.decode()
        )
        self.api = HttpApi(self.config.server, self.credentials, self._transport.http_transport())
        self._events: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        self._ws: WebSocketLike | None = None
        self._generation = 0
        self._connected = asyncio.Event()
        # Why the last connection attempt failed (None once connected): for error messages.
        self.connect_error: str | None = None
        self._outbox_wake = asyncio.Event()
        self._cursor = 0
        self._inflight: dict[str, OutboxItem] = {}
        self._waiters: dict[str, asyncio.Future[SendResult]] = {}
        self._device_fixes: dict[str, _DeviceFix] = {}
        self._pending_acks: list[int] = []
        self._pending_rejects: dict[str, list[int]] = {}  # by reason (the `reject` frame)
        self._pending_receipts: dict[str, list[str]] = {}
        # Peer devices whose next message must start a new Olm session (a retry request).
        self._renew: set[tuple[str, int]] = set()
        self._retry = retry.Retrier(
            lambda: self._store,
            self.device_id,
            self._queue_content,
            lambda peer, device: self._renew.add((peer, device)),
        )
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # Registration ----------------------------------------------------------------------------

    @classmethod
    async def register(
        cls,
        server: str,
        phone: str,
        read_code: Callable[[], Awaitable[str]],
        profile_dir: Path,
        *,
        name: str = "",
        username: str | None = None,
        transport: Transport | None = None,
        progress: Callable[[str], None] = lambda _: None,
    ) -> ProfileConfig:
        """Register this machine as device 1 of the phone number's account, in profile_dir.

        Registering a number that already has an account replaces all its devices. A wrong
        code asks again (read_code is called once per try) while the registration session
        has attempts left; the server counts them (docs/protocol.md, "Registration")."""
        phone = normalize_phone(phone)
        if username is not None and not USERNAME_RE.match(username.lstrip("@").lower()):
            # Checked before a code is sent: the server would refuse it after registering.
            raise UsageError(
                "usernames are 3-32 characters: a letter, then letters, digits or _; "
                "choose another --username"
            )
        # Not under a running `porch chat` or `porch recv`: it would go on as the old identity
        # with the deleted database, and relays would hand their messages to it (ownership.py).
        lock = ProfileLock(profile_dir)
        with contextlib.suppress(OSError):  # a read-only or missing profile fails later
            if Path(profile_dir).is_dir() and not lock.try_acquire():
                raise ProfileError(
                    f"the profile {profile_dir} is in use by another porch process (porch chat "
                    "or porch recv, say); close it, then register again",
                    code=ClientCode.PROFILE_LOCKED,
                )
        try:
            return await cls._register(
                server, phone, read_code, profile_dir, name, username, transport, progress
            )
        finally:
            lock.release()

    @classmethod
    async def _register(
        cls,
        server: str,
        phone: str,
        read_code: Callable[[], Awaitable[str]],
        profile_dir: Path,
        name: str,
        username: str | None,
        transport: Transport | None,
        progress: Callable[[str], None],
    ) -> ProfileConfig:
        transport = transport or NetworkTransport()
        api = HttpApi(server, transport=transport.http_transport())
        try:
            session = await api.request_code(phone)
            progress(
                f"A verification code was sent to {phone}; "
                f"{session.attempts_left} attempts to type it."
            )
            reg = None
            while reg is None:  # ends: every wrong code uses one of the session's attempts
                code = (await read_code()).strip().replace(" ", "").replace("-", "")
                try:
                    reg = await api.verify(session.session_id, code, name)
                except ServerError as exc:
                    left = exc.details.get("attempts_left")
                    if exc.code != "code_invalid" or not isinstance(left, int) or left < 1:
                        raise
                    text = str(exc)
                    progress(f"{text[:1].upper()}{text[1:]}; type the code again.")
        finally:
            await api.aclose()
        ensure_private_dir(profile_dir)
        for stale in profile_dir.glob("client.db*"):
            stale.unlink()  # a new registration is a new identity: old sessions are void
        (profile_dir / "profile.json").unlink(missing_ok=True)
        unclaimed: ServerError | None = None  # the username, when the server refused it
        store, sealer = _open_store(profile_dir)
        try:
            machine = OlmMachine.create(sealer.subkey("olm-pickle"))
            master = MasterKey.generate()
            one_time_keys = machine.generate_one_time_keys(ONE_TIME_KEYS_TARGET)
            fallback = machine.generate_fallback_key()
            with store.transaction():
                store.put_secret("password", reg.password.encode())
                store.put_secret("master_key", master.private_bytes())
                store.put_pickle("olm_account", machine.pickle_account())
            signature = master.sign_device(
                reg.account_id,
                reg.device_id,
                reg.registration_id,
                machine.curve25519,
                machine.ed25519,
            )
            creds = Credentials(reg.account_id, reg.device_id, reg.password)
            api = HttpApi(server, creds, transport.http_transport())
            try:
                await api.upload_keys(
                    identity={
                        "master_key": master.public_b64,
                        "curve25519": machine.curve25519,
                        "ed25519": machine.ed25519,
                        "signature": signature,
                    },
                    one_time_keys=one_time_keys,
                    fallback_key=fallback,
                )
                if username:
                    try:
                        username = await api.set_username(username)
                    except ServerError as exc:  # taken: the account exists all the same
                        unclaimed, username = exc, None
            finally:
                await api.aclose()
        finally:
            store.close()
        config = ProfileConfig(
            server=server,
            account_id=reg.account_id,
            device_id=reg.device_id,
            registration_id=reg.registration_id,
            phone=phone,
            username=username,
        )
        config.save(profile_dir)  # written last: a profile.json means a complete registration
        if unclaimed is not None:
            raise ServerError(
                unclaimed.code,
                f"registered {phone} as account {reg.account_id} in {profile_dir}, but "
                f"{unclaimed}; others can reach you by phone number (a username is claimed "
                "when registering)",
                unclaimed.status,
            )
        return config

    # Lifecycle -------------------------------------------------------------------------------

    def _load_olm(self, pickled: str) -> OlmMachine:
        machine = OlmMachine.from_pickle(pickled, self._pickle_key)
        for account_id, device_id, sessions in self._store.all_sessions():
            machine.load_sessions((account_id, device_id), sessions)
        return machine

    async def __aenter__(self) -> Client:
        if self._closed:  # entered again after an exit: reopen what the exit closed
            self._store, _ = _open_store(self.profile_dir)
            self.api = HttpApi(
                self.config.server, self.credentials, self._transport.http_transport()
            )
            self._closed = False
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._tasks = []
        self._relay_row = self._store.last_message_row()
        if self._lock.try_acquire():
            self._become_owner()
        else:
            # Another process on this profile owns the connection: never connect (that would
            # replace its connection), relay through the store instead (ownership.py).
            log.info("profile in use by another process: relaying through it")
            self._spawn(self._relay_loop())
        return self

    def _become_owner(self) -> None:
        self._outbox_seq = self._store.last_seq()
        self._spawn(self._connection_loop())
        self._spawn(self._outbox_loop())
        self._spawn(self._watch_outbox())

    @property
    def owner(self) -> bool:
        """True when this process owns the profile's connection; False in relay mode."""
        return self._lock.held

    async def _relay_loop(self) -> None:
        while True:
            await asyncio.sleep(RELAY_WAIT_POLL if self._waiters else RELAY_POLL)
            if self._lock.try_acquire():  # the owner exited: take over where it stopped
                pickled = self._store.get_pickle("olm_account")
                assert pickled is not None
                self._olm = self._load_olm(pickled)  # it moved the ratchets since we loaded
                log.info("took over the profile's connection")
                self._become_owner()
                return
            self._poll_waiters()
            for m in self._store.unshown(self._relay_row):
                self._relay_row = m.row
                self._emit(Message(m.client_id, m.peer, m.sender_device, m.text, m.ts, m.server_ts))

    def _poll_waiters(self) -> None:
        """The owner records each outcome in the store; read it back for what we wait on."""
        for client_id, future in list(self._waiters.items()):
            self._resolve_from_store(client_id, future)

    def _resolve_from_store(self, client_id: str, future: asyncio.Future[SendResult]) -> None:
        if future.done():
            return
        state = self._store.outbox_state(client_id)
        if state is not None:
            if state[0] == "failed":
                future.set_exception(
                    SendFailed(state[2] or "refused", code=state[1] or "send_failed")
                )
            return
        status, ts = self._store.outgoing_status(client_id) or ("cancelled", 0)
        if status == "pending":  # dequeued, its status not yet raised: look again soon
            return
        if status in ("cancelled", "failed"):
            future.set_exception(SendFailed("cancelled (porch outbox)", code="cancelled"))
        else:
            future.set_result(SendResult(client_id, ts))

    async def _watch_outbox(self) -> None:
        # Owner: other processes on the profile add outbox rows; SQLite cannot notify across
        # processes, so look for new rows a few times a second (one indexed MAX query). Our own
        # waiters are read back too: another process may cancel what we wait for, and after a
        # takeover the previous owner may have sent it before we held the lock.
        while True:
            await asyncio.sleep(OWNER_POLL)
            self._poll_waiters()
            seq = self._store.last_seq()
            if seq > self._outbox_seq:
                self._outbox_seq = seq
                self._outbox_wake.set()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tg is not None
        for task in self._tasks:
            task.cancel()
        try:
            # The body's own exception propagates by itself; handing it to the task group
            # would only wrap it in an ExceptionGroup. Failures of our loops still surface.
            await self._tg.__aexit__(None, None, None)
        finally:
            self._tg = None
            self._closed = True
            self._lock.release()
            await self.api.aclose()
            self._store.close()

    async def aclose(self) -> None:
        if self._tg is not None:
            await self.__aexit__(None, None, None)
        elif not self._closed:  # used offline (porch outbox): only the store and HTTP are open
            self._closed = True
            await self.api.aclose()
            self._store.close()

    @property
    def account_id(self) -> str:
        return self.config.account_id

    @property
    def device_id(self) -> int:
        return self.config.device_id

    @property
    def connected(self) -> bool:
        """Connected, or relaying through the process that owns the profile's connection."""
        return self._connected.is_set() or (self._tg is not None and not self.owner)

    async def wait_connected(self, timeout: float | None = None) -> None:
        if self._tg is not None and not self.owner:
            return  # the owner's connection serves this process
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            raise Timeout(
                f"could not connect to {self.config.server} within {timeout} s; is the server "
                "running? (it keeps retrying in the background)"
            ) from None

    async def events(self) -> AsyncIterator[Event]:
        """Every event in arrival order, forever (break out when done)."""
        while True:
            item = await self._events.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after timeout seconds without one."""
        try:
            async with asyncio.timeout(timeout):
                item = await self._events.get()
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._tg is not None
        self._tasks.append(self._tg.create_task(coro))
        self._tasks = [t for t in self._tasks if not t.done()]

    def _emit(self, event: Event) -> None:
        self._events.put_nowait(event)

    # Sending ---------------------------------------------------------------------------------

    async def resolve(self, to: str) -> str:
        """+NUMBER, @USERNAME or an account id -> account id (asks the directory once)."""
        to = to.strip()
        if to.startswith("+"):
            phone = normalize_phone(to)
            found = self._store.find_contact(phone=phone)
            if found:
                return found
            account_id = await self._lookup(phone=phone)
            self._store.set_contact(account_id, phone=phone)
            return account_id
        if to.startswith("@"):
            username = to[1:].lower()
            found = self._store.find_contact(username=username)
            if found:
                return found
            account_id = await self._lookup(username=username)
            self._store.set_contact(account_id, username=username)
            return account_id
        if len(to) == 36 and to.count("-") == 4:
            return to.lower()
        raise UsageError(
            f"{to!r} is not a +phone number, an @username or an account id (@{to}, say)"
        )

    async def _lookup(self, **query: str) -> str:
        try:
            return await self.api.lookup(**query)
        except ServerError as exc:
            if exc.code == "not_found":
                who = query.get("phone") or f"@{query.get('username')}"
                raise RecipientNotFound(
                    f"nobody on this server is {who}; check the spelling, or ask them for it"
                ) from None
            raise

    async def send_text(
        self, to: str, text: str, *, wait: bool = True, timeout: float | None = 30.0
    ) -> SendResult:
        """Queue a text message durably; with wait, return once the server acknowledged it."""
        recipient = await self.resolve(to)
        client_id = secrets.token_urlsafe(12)
        now = _now_ms()
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_TEXT_BYTES:
            raise MessageTooLong(
                f"the message is {size:,} bytes; the limit is {MAX_TEXT_BYTES:,} bytes "
                "(64 KiB): shorten it or split it into several"
            )
        try:
            content = encode_content(Text(client_id, text, now))
        except CryptoError as exc:  # invalid Unicode, say
            raise UsageError(f"cannot send that text: {exc.message}") from None
        with self._store.transaction() as db:
            self._store.enqueue(client_id, recipient, content, False, now)
            self._store.add_message(
                recipient, client_id, True, self.device_id, now, text, "pending", db
            )
        self._outbox_wake.set()
        if not wait:
            return SendResult(client_id, 0)
        return await self.wait_sent(client_id, timeout)

    async def wait_sent(self, client_id: str, timeout: float | None = 30.0) -> SendResult:
        """Wait until the server acknowledged a queued message (raises SendFailed if refused,
        Timeout if it is still queued after timeout seconds)."""
        future: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self._waiters[client_id] = future
        self._resolve_from_store(client_id, future)  # it may have gone already
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise Timeout(
                f"the server did not acknowledge the message within {timeout} s; it stays in "
                "the outbox and is sent the next time this profile connects",
                queued_id=client_id,
            ) from None
        finally:
            self._waiters.pop(client_id, None)

    async def mark_read(self, peer: str, ids: Sequence[str]) -> None:
        """Mark received messages read here and tell the sender (a read receipt)."""
        changed = self._store.set_status(peer, list(ids), outgoing=False, status="read")
        if changed:
            self._queue_content(peer, encode_content(Receipt("read", tuple(changed))))

    async def set_typing(self, peer: str, started: bool) -> bool:
        """Send an online-only typing indicator; False if it could not go now (never queued)."""
        ws = self._ws
        devices = [d for d in self._store.peer_devices(peer) if not self._is_me(peer, d.device_id)]
        if (
            ws is None
            or not devices
            or not all(self._olm.has_session((peer, d.device_id)) for d in devices)
        ):
            return False
        content = encode_content(Typing("started" if started else "stopped"))
        messages = self._encrypt_to(peer, devices, content)
        frame = cf.send(secrets.token_urlsafe(12), peer, messages, ephemeral=True)
        try:
            await ws.send(orjson.dumps(frame).decode())
        except ConnectionClosed:
            return False
        return True

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the outbox is empty (True) or timeout passes (False)."""
        if self._tg is not None and not self.owner:
            return True  # the owner sends the shared outbox, long after this process exits
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._store.outbox_size() == 0 and not self._pending_receipts:
                return True
            await asyncio.sleep(0.05)
        return False

    def _queue_content(self, recipient: str, content: bytes) -> None:
        self._store.enqueue(secrets.token_urlsafe(12), recipient, content, False, _now_ms())
        self._outbox_wake.set()

    # Local views -----------------------------------------------------------------------------

    def history(self, peer: str, limit: int = 200) -> list[HistoryMessage]:
        return self._store.history(peer, limit)

    def conversations(self) -> list[Conversation]:
        return self._store.conversations()

    def label(self, account_id: str) -> str:
        return "me" if account_id == self.account_id else self._store.contact_label(account_id)

    async def name_of(self, account_id: str) -> str:
        """@username or +number for an account, asking the server once when first seen."""
        if (
            account_id != self.account_id
            and account_id not in self._names_tried
            and not self._store.contact_named(account_id)
        ):
            self._names_tried.add(account_id)  # one try per process, even when it fails
            try:
                username, phone = await self.api.profile(account_id)
            except ClientError as exc:
                log.info("no public name for %s: %s", account_id[:8], exc.code)
            else:
                self._store.set_contact_name(account_id, username, phone)
        return self.label(account_id)

    def unshown(self, limit: int = 500) -> list[ReceivedMessage]:
        """Received messages that no command on this profile has shown yet, oldest first."""
        return self._store.unshown(0, limit)

    def mark_shown(self, rows: list[int] | None = None, *, peer: str | None = None) -> None:
        self._store.mark_shown(rows, peer=peer)

    def claim_shown(self, row: int) -> bool:
        """Mark one message shown; False when another command showed it first."""
        return self._store.mark_shown([row]) == 1

    def outbox(self) -> list[OutboxEntry]:
        return self._store.outbox_entries()

    def cancel(self, client_ids: list[str] | None) -> list[str]:
        """Cancel queued or failed items (all with None); returns the ids removed."""
        return self._store.cancel(client_ids)

    def retry(self, client_id: str) -> bool:
        done = self._store.retry(client_id)
        self._outbox_wake.set()
        return done

    async def block(self, to: str, blocked: bool = True) -> str:
        account_id = await self.resolve(to)
        await self.api.set_block(account_id, blocked)
        return account_id

    # Connection ------------------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        attempt = 0
        while True:
            try:
                ws = await self._transport.connect(self.config.ws_url)
            except ConnectionClosed as exc:
                log.info("connect failed: %s", exc.reason)
                self.connect_error = exc.reason
                attempt += 1
                await asyncio.sleep(self._backoff(attempt))
                continue
            try:
                ready = await self._authenticate(ws)
                attempt = 0
                self.connect_error = None
                self._generation += 1
                self._ws = ws
                self._inflight.clear()
                self._cursor = 0
                # The server keeps envelopes for its retention (30 days by default); ids older
                # than that can never come again.
                self._store.prune_seen(_now_ms() - SEEN_RETENTION_MS)
                self._connected.set()
                self._outbox_wake.set()
                self._emit(ConnectionChanged(True))
                if int(ready.get("one_time_keys", 0)) < ONE_TIME_KEYS_LOW:
                    self._spawn(self._top_up_keys())
                await self._read_loop(ws)
            except ConnectionClosed as exc:
                if exc.code == CloseCode.REPLACED:
                    self._events.put_nowait(
                        ClientError(
                            "this device connected from somewhere else; this session ended",
                            code="replaced",
                        )
                    )
                    return
                if exc.code == CloseCode.AUTH:
                    self._events.put_nowait(
                        ClientError(
                            "this device was removed, or its number was registered again "
                            "elsewhere; register again to use this profile",
                            code="revoked",
                        )
                    )
                    return
                log.info("connection lost (%s)", exc.code)
            except ClientError as exc:  # authentication refused: retrying cannot help
                self._events.put_nowait(exc)
                return
            finally:
                if self._ws is ws:
                    self._ws = None
                if self._connected.is_set():
                    self._connected.clear()
                    self._emit(ConnectionChanged(False))
                with contextlib.suppress(Exception):
                    await ws.close()
            attempt += 1
            await asyncio.sleep(self._backoff(attempt))

    @staticmethod
    def _backoff(attempt: int) -> float:
        # "Full jitter" (AWS architecture blog, Exponential Backoff and Jitter): spreads the
        # reconnects of many clients after a server restart.
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(attempt, 10)))
        return random.uniform(BACKOFF_BASE / 2, ceiling)

    async def _authenticate(self, ws: WebSocketLike) -> dict[str, Any]:
        c = self.credentials
        frame = cf.auth(c.account_id, c.device_id, c.password, batch=True)
        await ws.send(orjson.dumps(frame).decode())
        try:
            async with asyncio.timeout(AUTH_TIMEOUT):
                frame = orjson.loads(await ws.recv())
        except TimeoutError:
            raise ConnectionClosed(None, "the server did not answer the auth frame") from None
        if frame.get("type") == "error":
            raise ServerError(str(frame.get("code")), str(frame.get("message")))
        if frame.get("type") != "ready":
            raise ConnectionClosed(None, f"unexpected first frame {frame.get('type')!r}")
        return dict(frame)

    async def _read_loop(self, ws: WebSocketLike) -> None:
        while True:
            if self._pending_acks or self._pending_receipts or self._pending_rejects:
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                    # cancellation that lands as recv completes, and the client would then
                    # never stop (the task group waits for this loop for ever).
                    async with asyncio.timeout(ACK_DELAY):
                        raw = await ws.recv()
                except TimeoutError:
                    await self._flush_acks(ws)
                    continue
            else:
                raw = await ws.recv()
            try:
                frame = orjson.loads(raw)
                kind = frame.get("type")
            except (orjson.JSONDecodeError, AttributeError):
                log.warning("ignored a malformed frame from the server")
                continue
            if kind == "envelope":
                await self._take_envelope(frame)
                if len(self._pending_acks) >= ACK_BATCH:
                    await self._flush_acks(ws)
            elif kind == "envelopes":
                items = frame.get("items")
                for item in items if isinstance(items, list) else [items]:
                    await self._take_envelope(item)
                await self._flush_acks(ws)
            elif kind == "sent":
                self._on_sent(frame)
            elif kind == "error":
                self._on_error(frame)
            elif kind == "keys_low":
                self._spawn(self._top_up_keys())
            elif kind == "drained":
                self._emit(Drained())

    async def _flush_acks(self, ws: WebSocketLike) -> None:
        if self._pending_receipts:
            receipts, self._pending_receipts = self._pending_receipts, {}
            for sender, message_ids in receipts.items():
                receipt = Receipt("delivered", tuple(message_ids))
                self._queue_content(sender, encode_content(receipt))
        if self._pending_acks:
            acks, self._pending_acks = self._pending_acks, []
            await ws.send(orjson.dumps(cf.ack(acks)).decode())
        if self._pending_rejects:
            rejects, self._pending_rejects = self._pending_rejects, {}
            for reason, ids in rejects.items():
                for i in range(0, len(ids), MAX_ACK_IDS):
                    frame = cf.reject(ids[i : i + MAX_ACK_IDS], reason)
                    await ws.send(orjson.dumps(frame).decode())

    async def _top_up_keys(self) -> None:
        try:
            count = await self.api.key_count()
            if count >= ONE_TIME_KEYS_LOW:
                return
            keys = self._olm.generate_one_time_keys(ONE_TIME_KEYS_TARGET - count)
            self._save_olm()
            await self.api.upload_keys(one_time_keys=keys)
        except ClientError as exc:
            log.warning("could not upload one-time keys: %s", exc)

    # Receiving -------------------------------------------------------------------------------

    async def _take_envelope(self, frame: Any) -> None:
        """Handle one envelope; one that cannot be taken is rejected and reported, so that it
        never stops the queue or loops through reconnects (docs/protocol.md, "Delivery")."""
        if not isinstance(frame, dict):
            log.warning("ignored an envelope that is not an object")
            return
        envelope_id, sender, device = frame.get("id"), frame.get("from"), frame.get("from_device")
        if not _is_int(envelope_id, 0, MAX_ENVELOPE_ID):
            log.warning("ignored an envelope without a valid id")  # nothing to reject
            return
        assert isinstance(envelope_id, int)
        who = (
            sender if isinstance(sender, str) else "",
            device if isinstance(device, int) and _is_int(device) else 0,
        )
        if frame.get("too_large") is True:
            log.warning("envelope %d from %s was too large to deliver", envelope_id, who[0][:8])
            self._refuse(envelope_id, "too_large", *who)
            return
        # A sender that is no account id would make the key lookup fail (400) on every try.
        if not (
            isinstance(sender, str)
            and _ACCOUNT_ID.fullmatch(sender)
            and _is_int(device, 1, MAX_DEVICE_ID)
            and _is_int(frame.get("ts"))
            and _is_int(frame.get("kind"))
            and isinstance(frame.get("body"), str)
        ):
            log.warning("envelope %d is malformed", envelope_id)
            self._refuse(envelope_id, "malformed", *who)
            return
        try:
            await self._on_envelope(frame)
        except ConnectionClosed:
            raise  # transient: reconnect, and it comes again
        except Exception as exc:  # a bug or bad data: the same bytes would fail again
            log.exception("envelope %d could not be handled", envelope_id)
            self._refuse(envelope_id, "unprocessable", *who, detail=type(exc).__name__)

    def _refuse(
        self, envelope_id: int, reason: str, sender: str, device: int, detail: str = ""
    ) -> None:
        if envelope_id:
            self._pending_rejects.setdefault(reason, []).append(envelope_id)
        self._emit(DecryptionFailed(sender, device, f"{reason}: {detail}" if detail else reason))

    async def _on_envelope(self, frame: dict[str, Any]) -> None:
        envelope_id, server_ts = int(frame["id"]), int(frame["ts"])
        sender, sender_device = str(frame["from"]), int(frame["from_device"])
        if envelope_id and self._store.seen(envelope_id, server_ts):
            self._pending_acks.append(envelope_id)  # redelivered: it was stored already
            return
        failed = (envelope_id, server_ts, sender, sender_device)
        plaintext = await self._decrypt(failed, frame)
        if plaintext is None:
            return
        try:
            content = decode_content(plaintext)
        except CryptoError as exc:  # it decrypted, so a resend would carry the same content
            self._undecryptable(*failed, str(exc))
            return
        new_text = False
        with self._store.transaction() as db:
            self._persist_olm(db)
            if isinstance(content, Text):
                new_text = self._store.add_message(
                    sender,
                    content.id,
                    False,
                    sender_device,
                    content.ts,
                    content.body,
                    "received",
                    db,
                    server_ts=server_ts,
                )
            if envelope_id:
                self._store.mark_seen(envelope_id, server_ts, db)
        if envelope_id:
            self._pending_acks.append(envelope_id)
        if isinstance(content, Text):
            if new_text:
                if sender != self.account_id:
                    self._pending_receipts.setdefault(sender, []).append(content.id)
                self._emit(
                    Message(
                        content.id,
                        sender,
                        sender_device,
                        content.body,
                        content.ts,
                        int(frame["ts"]),
                    )
                )
        elif isinstance(content, Receipt):
            self._store.set_status(sender, list(content.ids), outgoing=True, status=content.kind)
            self._emit(ReceiptEvent(sender, content.kind, content.ids))
        elif isinstance(content, Typing):
            self._emit(TypingEvent(sender, content.state == "started"))
        elif isinstance(content, Retry):
            self._retry.answer(sender, sender_device, content)
        elif isinstance(content, Unknown):
            log.info("ignored content of a kind this version does not know (%s)", content.t[:32])

    async def _decrypt(
        self, failed: tuple[int, int, str, int], frame: dict[str, Any]
    ) -> bytes | None:
        """The envelope's plaintext, or None once it was dealt with as undecryptable."""
        sender, sender_device = failed[2], failed[3]
        try:
            ciphertext = OlmCiphertext(int(frame["kind"]), b64decode(str(frame["body"])))
        except (ValueError, KeyError) as exc:
            self._undecryptable(*failed, f"malformed envelope: {exc}")
            return None
        device, fetched = await self._sender_device_or_none(failed, fresh=False)
        if device is None:
            return None
        try:
            return self._olm.decrypt((sender, sender_device), device.curve25519, ciphertext)
        except CryptoError as exc:
            reason = str(exc)
        if not fetched and self._retry.may_refetch(sender, sender_device):
            # The cached keys may be stale (the sender re-registered or reinstalled): as Signal
            # does, fetch them afresh and, if they changed, decrypt again.
            fresh, _ = await self._sender_device_or_none(failed, fresh=True)
            if fresh is None:
                return None
            if fresh.curve25519 != device.curve25519:
                try:
                    return self._olm.decrypt((sender, sender_device), fresh.curve25519, ciphertext)
                except CryptoError as exc:
                    reason = str(exc)
        self._undecryptable(*failed, reason, request_retry=True)
        return None

    async def _sender_device_or_none(
        self, failed: tuple[int, int, str, int], fresh: bool
    ) -> tuple[PeerDeviceRow | None, bool]:
        """The sending device's keys (and whether they were fetched just now), or None once
        the envelope was dealt with as undecryptable."""
        _, _, sender, sender_device = failed
        try:
            return await self._sender_device(sender, sender_device, fresh=fresh)
        except ServerError as exc:
            if exc.code == "not_found":  # the sender has no keys (any more): it never will
                self._undecryptable(*failed, str(exc))
                return None, True
            raise ConnectionClosed(None, f"cannot fetch the sender's keys: {exc}") from None
        except ServerUnreachable as exc:
            # Transient: leave the envelope unacknowledged and reconnect, so it comes again.
            raise ConnectionClosed(None, f"cannot fetch the sender's keys: {exc}") from None
        except IdentityError as exc:  # keys that do not verify: asking again cannot help
            self._undecryptable(*failed, str(exc))
            return None, True

    def _undecryptable(
        self,
        envelope_id: int,
        server_ts: int,
        sender: str,
        device: int,
        reason: str,
        request_retry: bool = False,
    ) -> None:
        # Acknowledged all the same (the same bytes can never decrypt later, and keeping them
        # would block the queue), but never silently: history keeps a placeholder, the
        # application is told, and where a resend can help the sender is asked for one.
        log.warning("could not decrypt a message from %s/%s: %s", sender[:8], device, reason)
        asked = request_retry and self._retry.request(sender, device, server_ts)
        text = retry.placeholder_text(self.label(sender), asked)
        with self._store.transaction() as db:
            self._persist_olm(db)  # a decrypted but malformed content still moved the ratchet
            self._store.add_message(
                sender,
                retry.placeholder_id(device, server_ts),
                False,
                device,
                server_ts,
                text,
                retry.UNDECRYPTABLE,
                db,
            )
            if envelope_id:
                self._store.mark_seen(envelope_id, server_ts, db)
        if envelope_id:
            self._pending_acks.append(envelope_id)
        self._emit(DecryptionFailed(sender, device, reason, asked, server_ts))

    async def _sender_device(
        self, sender: str, device_id: int, fresh: bool = False
    ) -> tuple[PeerDeviceRow, bool]:
        """The sender's device keys: cached, else (or with fresh) from the directory, verified
        and replacing the cached ones. Also says whether they were fetched."""
        cached = {d.device_id: d for d in self._store.peer_devices(sender)}
        if not fresh and device_id in cached:
            return cached[device_id], False
        bundle = await self.api.get_keys(sender)
        self._verify_bundle(bundle, check_one_time_keys=False)
        rows = self._device_rows(bundle)
        for row in rows:
            old = cached.get(row.device_id)
            if old is not None and old.curve25519 != row.curve25519:
                self._olm.forget_peer((sender, row.device_id))  # sessions with old keys are void
        self._save_olm()
        self._store.put_peer_devices(sender, rows, replace=fresh)
        for row in rows:
            if row.device_id == device_id:
                return row, True
        raise IdentityError(f"{sender[:8]} has no device {device_id} in the key directory")

    # Outbox ----------------------------------------------------------------------------------

    async def _outbox_loop(self) -> None:
        while True:
            await self._connected.wait()
            ws, generation = self._ws, self._generation
            room = MAX_INFLIGHT - len(self._inflight)
            items = self._store.pending(self._cursor, room) if room > 0 and ws else []
            items = [i for i in items if i.client_id not in self._inflight]
            if not items or ws is None:
                self._outbox_wake.clear()
                await self._outbox_wake.wait()
                continue
            for item in items:
                if generation != self._generation:
                    break
                try:
                    frame = await self._prepare(item)
                except ServerUnreachable as exc:
                    log.info("outbox waits: %s", exc)
                    await asyncio.sleep(1.0)
                    break
                except (RecipientNotFound, IdentityError, SendFailed) as exc:
                    self._fail(item, exc.code, str(exc))
                    continue
                except ServerError as exc:
                    if exc.code in ("not_found", "bad_request"):
                        self._fail(item, exc.code, str(exc))
                        continue
                    log.info("outbox waits: %s", exc)
                    await asyncio.sleep(1.0)
                    break
                if generation != self._generation:
                    break
                self._inflight[item.client_id] = item
                self._cursor = max(self._cursor, item.seq)
                try:
                    await ws.send(orjson.dumps(frame).decode())
                except ConnectionClosed:
                    break

    def _is_me(self, account_id: str, device_id: int) -> bool:
        return account_id == self.account_id and device_id == self.device_id

    async def _prepare(self, item: OutboxItem) -> dict[str, Any]:
        """Encrypt one outbox item for every current device of its recipient."""
        recipient = item.recipient
        fix = self._device_fixes.pop(recipient, None)
        devices = {d.device_id: d for d in self._store.peer_devices(recipient)}
        if fix is not None:
            for device_id in fix.extra | fix.stale:
                self._store.drop_peer_device(recipient, device_id)
                self._olm.forget_peer((recipient, device_id))
                devices.pop(device_id, None)
        need = [
            d
            for d in devices
            if not self._is_me(recipient, d)
            and (not self._olm.has_session((recipient, d)) or (recipient, d) in self._renew)
        ]
        if fix is not None:
            need.extend(fix.missing | fix.stale)
        if not devices or need:
            bundle = await self.api.claim_keys(recipient, sorted(set(need)) if devices else None)
            self._start_sessions(bundle)
            self._renew.difference_update((recipient, d) for d in need)
            devices = {d.device_id: d for d in self._store.peer_devices(recipient)}
        targets = [d for d in devices.values() if not self._is_me(recipient, d.device_id)]
        if not targets:
            raise SendFailed(f"{recipient[:8]} has no device that can receive messages")
        messages = self._encrypt_to(recipient, targets, item.content)
        return cf.send(item.client_id, recipient, messages)

    def _encrypt_to(
        self, recipient: str, devices: list[PeerDeviceRow], content: bytes
    ) -> list[dict[str, Any]]:
        messages = []
        for d in devices:
            ct = self._olm.encrypt((recipient, d.device_id), content)
            messages.append(
                cf.device_message(d.device_id, d.registration_id, ct.kind, b64encode(ct.body))
            )
        # The ratchet moved: persist before the ciphertext leaves, so a crash never reuses keys.
        self._save_olm()
        return messages

    def _start_sessions(self, bundle: Bundle) -> list[int]:
        self._verify_bundle(bundle, check_one_time_keys=True)
        started = []
        for d in bundle.devices:
            if self._is_me(bundle.account_id, d.device_id):
                continue
            if d.one_time_key is None:
                raise IdentityError(
                    f"device {d.device_id} of {bundle.account_id[:8]} has no keys left"
                )
            self._olm.create_outbound_session(
                (bundle.account_id, d.device_id), d.curve25519, d.one_time_key.curve25519
            )
            started.append(d.device_id)
        self._store.put_peer_devices(bundle.account_id, self._device_rows(bundle), replace=False)
        self._save_olm()
        return started

    def _verify_bundle(self, bundle: Bundle, check_one_time_keys: bool) -> None:
        """Check master key -> device keys -> one-time key; pin the master key on first use."""
        pinned = self._store.contact_master_key(bundle.account_id)
        try:
            for d in bundle.devices:
                verify_device_binding(
                    bundle.master_key,
                    bundle.account_id,
                    d.device_id,
                    d.registration_id,
                    d.curve25519,
                    d.ed25519,
                    d.signature,
                )
                if check_one_time_keys and d.one_time_key is not None:
                    k = d.one_time_key
                    verify_one_time_key(d.ed25519, k.key_id, k.curve25519, k.fallback, k.signature)
        except (SignatureError, ValueError) as exc:
            raise IdentityError(
                f"the key directory returned keys for {bundle.account_id[:8]} "
                f"that do not verify: {exc}"
            ) from None
        if pinned is not None and pinned != bundle.master_key:
            # As Signal does by default: warn (the safety number changed; the conversation
            # shows it too), then carry on. Only keys that verified count as a change.
            now = _now_ms()
            notice = retry.identity_notice(self.label(bundle.account_id))
            self._store.add_message(
                bundle.account_id, f"identity-{now}", False, 0, now, notice, retry.NOTICE
            )
            self._emit(IdentityChanged(bundle.account_id))
        self._store.set_contact(bundle.account_id, master_key=bundle.master_key)

    @staticmethod
    def _device_rows(bundle: Bundle) -> list[PeerDeviceRow]:
        return [
            PeerDeviceRow(
                bundle.account_id, d.device_id, d.registration_id, d.curve25519, d.ed25519
            )
            for d in bundle.devices
        ]

    def _save_olm(self) -> None:
        with self._store.transaction() as db:
            self._persist_olm(db)

    def _persist_olm(self, db: Any) -> None:
        dirty = self._olm.dirty_peers()
        if dirty:
            self._store.save_sessions({p: self._olm.pickle_sessions(p) for p in dirty}, db)
        if self._olm.account_dirty or dirty:
            self._store.put_pickle("olm_account", self._olm.pickle_account(), db)
        self._olm.clear_dirty()

    def _on_sent(self, frame: dict[str, Any]) -> None:
        client_id = str(frame.get("id"))
        item = self._inflight.pop(client_id, None)
        recipient = self._store.dequeue(client_id)
        ts = int(frame.get("ts", 0))
        if recipient is not None:
            self._store.set_status(recipient, [client_id], outgoing=True, status="sent", ts=ts)
        waiter = self._waiters.get(client_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(SendResult(client_id, ts))
        if item is not None:
            self._outbox_wake.set()

    def _on_error(self, frame: dict[str, Any]) -> None:
        code, message, ref = str(frame.get("code")), str(frame.get("message")), frame.get("ref")
        item = self._inflight.pop(ref, None) if isinstance(ref, str) else None
        if item is None:
            log.warning("server error %s: %s", code, message)
            return
        if code in DEVICE_SEND_ERRORS:
            fix = self._device_fixes.setdefault(item.recipient, _DeviceFix(set(), set(), set()))
            fix.missing.update(frame.get("missing", []))
            fix.extra.update(frame.get("extra", []))
            fix.stale.update(frame.get("stale", []))
            self._requeue(item)
        elif code in PERMANENT_SEND_ERRORS:
            self._fail(item, code, message)
        else:  # rate limited, unavailable, internal: try again
            self._requeue(item, delay=float(frame.get("retry_after", 1.0)))

    def _requeue(self, item: OutboxItem, delay: float = 0.0) -> None:
        self._cursor = min(self._cursor, item.seq - 1)
        if delay:
            asyncio.get_running_loop().call_later(delay, self._outbox_wake.set)
        else:
            self._outbox_wake.set()

    def _fail(self, item: OutboxItem, code: str, message: str) -> None:
        self._inflight.pop(item.client_id, None)
        try:
            is_text = isinstance(decode_content(item.content), Text)
        except (ValueError, KeyError):
            is_text = False
        if is_text:  # kept as failed, for `porch outbox`; never resent by itself
            self._store.fail(item.client_id, code, message)
        else:  # a receipt nobody can act on
            self._store.dequeue(item.client_id)
        waiter = self._waiters.get(item.client_id)
        error = SendFailed(message, code=code)
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self._emit(SendFailedEvent(item.client_id, item.recipient, code, message))
        log.warning("message %s not sent: %s (%s)", item.client_id, message, code)
