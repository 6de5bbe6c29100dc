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
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import phonenumbers

from porch.client.api import Bundle, Credentials, HttpApi
from porch.client.errors import (
    ClientError,
    IdentityError,
    MessageTooLong,
    NotRegistered,
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
from porch.client.profile import ProfileConfig, ensure_private_dir
from porch.client.profile import open_store as _open_store
from porch.client.store import Conversation, HistoryMessage, OutboxItem, PeerDeviceRow
from porch.client.transport import ConnectionClosed, NetworkTransport, Transport, WebSocketLike
from porch.crypto.content import (
    MAX_TEXT_BYTES,
    Receipt,
    Text,
    Typing,
    Unknown,
    decode_content,
    encode_content,
)
from porch.crypto.errors import CryptoError, SignatureError
from porch.crypto.olm import OlmCiphertext, OlmMachine
from porch.crypto.signing import MasterKey, verify_device_binding, verify_one_time_key
from porch.protocol.codec import b64decode, b64encode

log = logging.getLogger("porch.client")

ONE_TIME_KEYS_TARGET = 50
ONE_TIME_KEYS_LOW = 20
MAX_INFLIGHT = 128
ACK_BATCH = 128
ACK_DELAY = 0.02
BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0
AUTH_TIMEOUT = 15.0
CLOSE_REPLACED = 4409
CLOSE_AUTH = 4401
SEEN_RETENTION_MS = 45 * 86_400_000
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
        self._olm = OlmMachine.from_pickle(pickled, self._pickle_key)
        for account_id, device_id, sessions in self._store.all_sessions():
            self._olm.load_sessions((account_id, device_id), sessions)
        self.credentials = Credentials(
            self.config.account_id, self.config.device_id, password.decode()
        )
        self.api = HttpApi(self.config.server, self.credentials, self._transport.http_transport())
        self._events: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        self._ws: WebSocketLike | None = None
        self._generation = 0
        self._connected = asyncio.Event()
        self._outbox_wake = asyncio.Event()
        self._cursor = 0
        self._inflight: dict[str, OutboxItem] = {}
        self._waiters: dict[str, asyncio.Future[SendResult]] = {}
        self._device_fixes: dict[str, _DeviceFix] = {}
        self._pending_acks: list[int] = []
        self._pending_receipts: dict[str, list[str]] = {}
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

        Registering a number that already has an account replaces all its devices."""
        phone = normalize_phone(phone)
        transport = transport or NetworkTransport()
        api = HttpApi(server, transport=transport.http_transport())
        try:
            await api.request_code(phone)
            progress(f"A verification code was sent to {phone}.")
            code = (await read_code()).strip()
            reg = await api.verify(phone, code, name)
        finally:
            await api.aclose()
        ensure_private_dir(profile_dir)
        for stale in profile_dir.glob("client.db*"):
            stale.unlink()  # a new registration is a new identity: old sessions are void
        (profile_dir / "profile.json").unlink(missing_ok=True)
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
                    username = await api.set_username(username)
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
        return config

    # Lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        if self._closed:  # entered again after an exit: reopen what the exit closed
            self._store, _ = _open_store(self.profile_dir)
            self.api = HttpApi(
                self.config.server, self.credentials, self._transport.http_transport()
            )
            self._closed = False
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._tasks = [
            self._tg.create_task(self._connection_loop()),
            self._tg.create_task(self._outbox_loop()),
        ]
        return self

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
            await self.api.aclose()
            self._store.close()

    async def aclose(self) -> None:
        await self.__aexit__(None, None, None)

    @property
    def account_id(self) -> str:
        return self.config.account_id

    @property
    def device_id(self) -> int:
        return self.config.device_id

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float | None = None) -> None:
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
        raise ClientError(f"{to!r} is not a +phone number, an @username or an account id")

    async def _lookup(self, **query: str) -> str:
        try:
            return await self.api.lookup(**query)
        except ServerError as exc:
            if exc.code == "not_found":
                raise RecipientNotFound(
                    f"nobody on this server is {next(iter(query.values()))}"
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
        future: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self._waiters[client_id] = future
        with self._store.transaction() as db:
            self._store.enqueue(client_id, recipient, content, False, now)
            self._store.add_message(
                recipient, client_id, True, self.device_id, now, text, "pending", db
            )
        self._outbox_wake.set()
        if not wait:
            self._waiters.pop(client_id, None)
            return SendResult(client_id, 0)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise Timeout(
                f"the server did not acknowledge the message within {timeout} s; it stays in "
                "the outbox and is sent the next time this profile connects"
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
        frame = {
            "type": "send",
            "id": secrets.token_urlsafe(12),
            "to": peer,
            "messages": messages,
            "ephemeral": True,
        }
        try:
            await ws.send(orjson.dumps(frame).decode())
        except ConnectionClosed:
            return False
        return True

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the outbox is empty (True) or timeout passes (False)."""
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
                attempt += 1
                await asyncio.sleep(self._backoff(attempt))
                continue
            try:
                ready = await self._authenticate(ws)
                attempt = 0
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
                if exc.code == CLOSE_REPLACED:
                    self._events.put_nowait(
                        ClientError(
                            "this device connected from somewhere else; this session ended",
                            code="replaced",
                        )
                    )
                    return
                if exc.code == CLOSE_AUTH:
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
        await ws.send(
            orjson.dumps(
                {
                    "type": "auth",
                    "account": c.account_id,
                    "device": c.device_id,
                    "password": c.password,
                    "batch": True,
                }
            ).decode()
        )
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
            if self._pending_acks or self._pending_receipts:
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
                await self._on_envelope(frame)
                if len(self._pending_acks) >= ACK_BATCH:
                    await self._flush_acks(ws)
            elif kind == "envelopes":
                for item in frame.get("items", []):
                    await self._on_envelope(item)
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
            await ws.send(orjson.dumps({"type": "ack", "ids": acks}).decode())

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

    async def _on_envelope(self, frame: dict[str, Any]) -> None:
        envelope_id, server_ts = int(frame["id"]), int(frame["ts"])
        sender, sender_device = str(frame["from"]), int(frame["from_device"])
        if envelope_id and self._store.seen(envelope_id, server_ts):
            self._pending_acks.append(envelope_id)  # redelivered: it was stored already
            return
        try:
            device = await self._sender_device(sender, sender_device)
        except ServerError as exc:
            if exc.code == "not_found":  # the sender has no keys (any more): it never will
                self._undecryptable(envelope_id, server_ts, sender, sender_device, str(exc))
                return
            raise ConnectionClosed(None, f"cannot fetch the sender's keys: {exc}") from None
        except ServerUnreachable as exc:
            # Transient: leave the envelope unacknowledged and reconnect, so it comes again.
            raise ConnectionClosed(None, f"cannot fetch the sender's keys: {exc}") from None
        except IdentityError as exc:
            self._undecryptable(envelope_id, server_ts, sender, sender_device, str(exc))
            return
        try:
            plaintext = self._olm.decrypt(
                (sender, sender_device),
                device.curve25519,
                OlmCiphertext(int(frame["kind"]), b64decode(str(frame["body"]))),
            )
            content = decode_content(plaintext)
        except (CryptoError, ValueError, KeyError) as exc:
            self._undecryptable(envelope_id, server_ts, sender, sender_device, str(exc))
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
        elif isinstance(content, Unknown):
            log.info("ignored content of a kind this version does not know (%s)", content.t[:32])

    def _undecryptable(
        self, envelope_id: int, server_ts: int, sender: str, device: int, reason: str
    ) -> None:
        # Acknowledged all the same: the same bytes can never decrypt later, and keeping them
        # would block the queue. The application is told (DecryptionFailed).
        log.warning("could not decrypt a message from %s/%s: %s", sender[:8], device, reason)
        if envelope_id:
            self._store.mark_seen(envelope_id, server_ts)
            self._pending_acks.append(envelope_id)
        self._emit(DecryptionFailed(sender, device, reason))

    async def _sender_device(self, sender: str, device_id: int) -> PeerDeviceRow:
        for device in self._store.peer_devices(sender):
            if device.device_id == device_id:
                return device
        bundle = await self.api.get_keys(sender)
        self._verify_bundle(bundle, check_one_time_keys=False)
        rows = self._device_rows(bundle)
        self._store.put_peer_devices(sender, rows, replace=False)
        for row in rows:
            if row.device_id == device_id:
                return row
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
            if not self._olm.has_session((recipient, d)) and not self._is_me(recipient, d)
        ]
        if fix is not None:
            need.extend(fix.missing | fix.stale)
        if not devices or need:
            bundle = await self.api.claim_keys(recipient, sorted(set(need)) if devices else None)
            self._start_sessions(bundle)
            devices = {d.device_id: d for d in self._store.peer_devices(recipient)}
        targets = [d for d in devices.values() if not self._is_me(recipient, d.device_id)]
        if not targets:
            raise SendFailed(f"{recipient[:8]} has no device that can receive messages")
        messages = self._encrypt_to(recipient, targets, item.content)
        return {"type": "send", "id": item.client_id, "to": recipient, "messages": messages}

    def _encrypt_to(
        self, recipient: str, devices: list[PeerDeviceRow], content: bytes
    ) -> list[dict[str, Any]]:
        messages = []
        for d in devices:
            ct = self._olm.encrypt((recipient, d.device_id), content)
            messages.append(
                {
                    "device": d.device_id,
                    "registration": d.registration_id,
                    "kind": ct.kind,
                    "body": b64encode(ct.body),
                }
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
        if pinned is not None and pinned != bundle.master_key:
            # As Signal does by default: warn (the safety number changed), then carry on.
            self._emit(IdentityChanged(bundle.account_id))
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
        self._store.dequeue(item.client_id)
        self._store.set_status(item.recipient, [item.client_id], outgoing=True, status="pending")
        waiter = self._waiters.get(item.client_id)
        error = SendFailed(message, code=code)
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self._emit(SendFailedEvent(item.client_id, item.recipient, code, message))
        log.warning("message %s not sent: %s (%s)", item.client_id, message, code)
