"""The async SDK client: registration, a self-healing connection, a durable outbox, E2E.

    async with Client(profile_dir) as client:
        await client.send_text("+14155550100", "hello")
        async for event in client.events():
            ...

The decisions (sessions, content, what to acknowledge, what to send) are made by the sans-IO
core in porch.client.core; porch.client.runner connects, reads and sends for it, in this
Client's task group. Every message is written locally first and resent until the server
acknowledges it (the server deduplicates by client message id); received envelopes are
decrypted, stored and only then acknowledged, and a redelivered envelope is recognised by its
id before decryption (ARCHITECTURE.md, principle 3). The methods for sending are in
porch.client.sending, those for rich messages, media and trust in their mixins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any

from porch.client import linking, registration
from porch.client.api import Credentials, HttpApi
from porch.client.core import Bundle, ClientCore
from porch.client.core.context import now_ms
from porch.client.directory import Directory
from porch.client.errors import (
    ClientError,
    NotRegistered,
    Timeout,
)
from porch.client.events import Event, Message
from porch.client.group_api import GroupApi
from porch.client.groups import Groups, rotation_from_env
from porch.client.media import MediaMixin
from porch.client.ownership import ProfileLock
from porch.client.profile import ProfileConfig
from porch.client.profile import open_store as _open_store
from porch.client.quotes import checked
from porch.client.registration import normalize_phone
from porch.client.rich import RichMixin
from porch.client.runner import ENDING_CODES, Runner
from porch.client.sending import SendingMixin
from porch.client.shared import ReceivedMessage
from porch.client.store import Conversation, HistoryMessage
from porch.client.transport import NetworkTransport, Transport
from porch.client.trust import TrustMixin
from porch.client.waiters import SendResult, Waiters
from porch.crypto.megolm import RotationPolicy
from porch.crypto.olm import OlmMachine

log = logging.getLogger("porch.client")

# How often the processes on one profile look at the store they share (docs/design.md): the
# owner for others' outbox rows, a relay for new messages, and faster while it waits on a send.
OWNER_POLL = 0.1
RELAY_POLL = 0.2
RELAY_WAIT_POLL = 0.05

__all__ = ["Client", "SendResult", "normalize_phone"]


class Client(SendingMixin, TrustMixin, RichMixin, MediaMixin):
    def __init__(
        self,
        profile_dir: Path,
        *,
        transport: Transport | None = None,
        server: str | None = None,
        rotation: RotationPolicy | None = None,
    ) -> None:
        """``rotation``: when group sessions are replaced (default: PORCH_GROUP_ROTATE_*, else
        100 messages or a week)."""
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
        self._core = ClientCore(
            self._store,
            self._load_olm(pickled),
            self.account_id,
            self.device_id,
            rotation=rotation or rotation_from_env(os.environ),
        )
        self._lock = ProfileLock(self.profile_dir)
        self._outbox_seq = 0
        self._relay_row = 0
        self._directory = Directory(
            lambda: self._store, lambda: self.api, self.account_id, self.label
        )
        self.credentials = Credentials(
            self.config.account_id, self.config.device_id, password.decode()
        )
        self.api = HttpApi(self.config.server, self.credentials, self._transport.http_transport())
        self._events: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        self._waiters = Waiters()
        # Set when the connection ended for good (revoked, replaced): waits end with it.
        self._ended: ClientError | None = None
        self._runner_news = asyncio.Event()
        self._runner = Runner(
            self._core,
            lambda: self.api,
            self._transport,
            self.config.ws_url,
            self.credentials.password,
            self._from_runner,
            self._waiters.settle,
            self._spawn,
            lambda group_id: self.groups.rotate_state_key(group_id),
            lambda group_id: self.groups.share_state_key(group_id),
        )
        self.groups = Groups(  # porch.client.groups: the group façade (spec B, E)
            lambda: self._store,
            lambda: GroupApi(self.api),
            self._core.groups,  # the core's GroupCrypto: one outbound session per group
            self.account_id,
            self.device_id,
            self.resolve,
            self._runner.wake_outbox,
            now_ms,
        )
        self._stack: contextlib.AsyncExitStack | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.expire_now()  # opening a profile drops what expired while nothing ran

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
        """Register this machine as device 1 of the phone number's account, in profile_dir
        (porch.client.registration.register)."""
        return await registration.register(
            server,
            phone,
            read_code,
            profile_dir,
            name=name,
            username=username,
            transport=transport,
            progress=progress,
        )

    @classmethod
    async def link(
        cls,
        server: str,
        profile_dir: Path,
        *,
        show_uri: Callable[[str], None],
        name: str = "",
        transport: Transport | None = None,
        timeout: float = linking.LINK_TIMEOUT,
    ) -> ProfileConfig:
        """Make profile_dir a new device of an existing account: show_uri gets the
        ``porch://link`` URI to approve on one of its devices (porch.client.linking.link)."""
        return await linking.link(
            server, profile_dir, name=name, show_uri=show_uri, transport=transport, timeout=timeout
        )

    # Lifecycle -------------------------------------------------------------------------------

    def _load_olm(self, pickled: str) -> OlmMachine:
        machine = OlmMachine.from_pickle(pickled, self._pickle_key)
        for account_id, device_id, sessions in self._store.all_sessions():
            machine.load_sessions((account_id, device_id), sessions)
        return machine

    async def __aenter__(self) -> Client:
        if self._closed:  # entered again after an exit: reopen what the exit closed
            self._store, _ = _open_store(self.profile_dir)
            self._core.store = self._store
            self.api = HttpApi(
                self.config.server, self.credentials, self._transport.http_transport()
            )
            self._closed = False
        async with contextlib.AsyncExitStack() as stack:
            self._tg = await stack.enter_async_context(asyncio.TaskGroup())
            self._tasks = []
            self._relay_row = self._store.last_message_row()
            self._spawn(self._expiry_loop())  # disappearing messages (client/rich.py)
            if self._lock.try_acquire():
                self._become_owner()
            else:
                # Another process on this profile owns the connection: never connect (that
                # would replace its connection), relay through the store instead
                # (ownership.py).
                log.info("profile in use by another process: relaying through it")
                self._spawn(self._relay_loop())
            self._stack = stack.pop_all()  # entered: __aexit__ leaves the task group
        return self

    def _become_owner(self) -> None:
        self._outbox_seq = self._store.last_seq()
        self._spawn(self._runner.connection_loop())
        self._spawn(self._runner.outbox_loop())
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
                self._core.olm = self._load_olm(pickled)  # it moved the ratchets since we loaded
                log.info("took over the profile's connection")
                self._become_owner()
                return
            self._waiters.poll(self._store)
            for m in self._store.unshown(self._relay_row):
                self._relay_row = m.row
                self._emit(Message(m.client_id, m.peer, m.sender_device, m.text, m.ts, m.server_ts))

    async def _watch_outbox(self) -> None:
        # Owner: other processes on the profile add outbox rows; SQLite cannot notify across
        # processes, so look for new rows a few times a second (one indexed MAX query). Our own
        # waiters are read back too: another process may cancel what we wait for, and after a
        # takeover the previous owner may have sent it before we held the lock.
        while True:
            await asyncio.sleep(OWNER_POLL)
            self._waiters.poll(self._store)
            seq = self._store.last_seq()
            if seq > self._outbox_seq:
                self._outbox_seq = seq
                self._runner.wake_outbox()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        for task in self._tasks:
            task.cancel()
        try:
            # The body's own exception propagates by itself; handing it to the task group
            # would only wrap it in an ExceptionGroup. Failures of our loops still surface.
            await stack.aclose()
        finally:
            self._tg = None
            self._closed = True
            self._lock.release()
            await self.api.aclose()
            self._store.close()

    async def aclose(self) -> None:
        if self._stack is not None:
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
    def connect_error(self) -> str | None:
        """Why the last connection attempt failed; None once connected (or never tried)."""
        return self._runner.connect_error

    @property
    def connected(self) -> bool:
        """Connected, or relaying through the process that owns the profile's connection."""
        return self._runner.connected.is_set() or (self._tg is not None and not self.owner)

    def _from_runner(self, event: Event | BaseException) -> None:
        if isinstance(event, ClientError) and event.code in ENDING_CODES:
            # The runner stopped for good: whoever waits to connect or to be sent hears why
            # now, not when their timeout says the server cannot be reached.
            self._ended = event
            self._waiters.fail_all(event)
        self._runner_news.set()
        self._events.put_nowait(event)

    async def wait_connected(self, timeout: float | None = None) -> None:
        if self._tg is not None and not self.owner:
            return  # the owner's connection serves this process
        try:
            async with asyncio.timeout(timeout):
                while not self._runner.connected.is_set():
                    if self._ended is not None:
                        raise self._ended
                    self._runner_news.clear()
                    await self._runner_news.wait()
        except TimeoutError:
            why = self._runner.connect_error or ""
            if why.startswith("the server"):  # it answered: busy or refusing, not down
                raise Timeout(
                    f"could not connect to {self.config.server} within {timeout} s: {why} "
                    "(a client that stays open keeps retrying)"
                ) from None
            raise Timeout(
                f"could not connect to {self.config.server} within {timeout} s; is the server "
                "running? (a client that stays open keeps retrying)"
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

    def _verify_bundle(self, bundle: Bundle, check_one_time_keys: bool) -> None:
        self._runner.perform(self._core.verify_bundle(bundle, check_one_time_keys))

    # Directory -------------------------------------------------------------------------------

    async def resolve(self, to: str) -> str:
        """+NUMBER, @USERNAME or an account id -> account id (asks the directory once)."""
        return await self._directory.resolve(to)

    # Local views -----------------------------------------------------------------------------

    # Every local read runs the expiry first (one indexed query on expires_at): an expired
    # disappearing message is never shown, whether or not the 30 s loop ran (spec §3).

    def history(self, peer: str, limit: int = 200) -> list[HistoryMessage]:
        self.expire_now()
        me = self.account_id
        return [checked(self._store, m, me) for m in self._store.history(peer, limit)]

    def conversations(self) -> list[Conversation]:
        self.expire_now()
        return self._store.conversations()

    def label(self, account_id: str) -> str:
        return self._core.label(account_id)

    async def name_of(self, account_id: str) -> str:
        """@username or +number for an account, asking the server once when first seen."""
        return await self._directory.name_of(account_id)

    def unshown(self, limit: int = 500) -> list[ReceivedMessage]:
        """Received messages that no command on this profile has shown yet, oldest first."""
        self.expire_now()
        me = self.account_id
        return [checked(self._store, m, me) for m in self._store.unshown(0, limit)]

    def mark_shown(self, rows: list[int] | None = None, *, peer: str | None = None) -> None:
        self._store.mark_shown(rows, peer=peer)

    def claim_shown(self, row: int) -> bool:
        """Mark one message shown; False when another command showed it first."""
        return self._store.mark_shown([row]) == 1

    async def block(self, to: str, blocked: bool = True) -> str:
        account_id = await self.resolve(to)
        await self.api.set_block(account_id, blocked)
        return account_id
