"""The async layer around the client core: the connection, the receiver and the outbox.

The core (porch.client.core) decides; this module performs. It connects and authenticates
(reconnecting with full-jitter backoff), decodes each frame and feeds it to the core, and
carries out the actions that come back: frames go out on the socket, events to the Client's
queue, and HTTP calls (key fetches, one-time key top-ups) run as tasks in the Client's task
group, whose answers go back to the core. A key fetch therefore never blocks the receiver:
the core parks that sender's envelopes and the loop reads on (docs/design.md, "Client core").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import orjson

from porch.client.api import HttpApi
from porch.client.core import (
    Action,
    ClaimKeys,
    ClientCore,
    EmitEvent,
    FetchGroup,
    FetchKeys,
    PauseOutbox,
    Reconnect,
    RotateStateKey,
    SendFrame,
    SendSettled,
    ShareStateKey,
    TopUpKeys,
    WakeOutbox,
)
from porch.client.errors import ClientError, IdentityError, ServerError
from porch.client.events import ConnectionChanged, Event
from porch.client.group_api import GroupApi
from porch.client.transport import ConnectionClosed, Transport, WebSocketLike
from porch.failures import reason
from porch.protocol.close_codes import CloseCode

log = logging.getLogger("porch.client")

ACK_DELAY = 0.02
BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0
AUTH_TIMEOUT = 15.0


def backoff(attempt: int) -> float:
    # "Full jitter" (AWS architecture blog, Exponential Backoff and Jitter): spreads the
    # reconnects of many clients after a server restart.
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(attempt, 10)))
    return random.uniform(BACKOFF_BASE / 2, ceiling)


# The codes of the errors after which the runner stops for good (Client ends waits with them).
ENDING_CODES = frozenset({"revoked", "replaced", "auth_failed"})


class Runner:
    def __init__(
        self,
        core: ClientCore,
        api: Callable[[], HttpApi],
        transport: Transport,
        ws_url: str,
        password: str,
        emit: Callable[[Event | BaseException], None],
        settle: Callable[[SendSettled], None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        rotate: Callable[[str], Awaitable[object]] | None = None,
        share: Callable[[str], None] | None = None,
    ) -> None:
        self._core, self._api, self._transport = core, api, transport
        self._rotate = rotate  # client.groups.rotate_state_key
        self._share = share  # client.groups.share_state_key
        self._ws_url, self._password = ws_url, password
        self._emit, self._settle, self._spawn = emit, settle, spawn
        self.ws: WebSocketLike | None = None
        self.generation = 0
        # Why the last connection attempt failed (None once connected): for error messages.
        self.connect_error: str | None = None
        self.connected = asyncio.Event()
        self.outbox_wake = asyncio.Event()
        self._reconnect: str | None = None

    def wake_outbox(self, delay: float = 0.0) -> None:
        if delay:
            asyncio.get_running_loop().call_later(delay, self.outbox_wake.set)
        else:
            self.outbox_wake.set()

    # Actions -------------------------------------------------------------------------------

    def perform(self, actions: list[Action]) -> list[SendFrame]:
        """Carry out every action that needs no socket; return the frames to send."""
        frames = []
        for action in actions:
            if isinstance(action, SendFrame):
                frames.append(action)
            elif isinstance(action, EmitEvent):
                self._emit(action.event)
            elif isinstance(action, WakeOutbox):
                self.wake_outbox(action.delay)
            elif isinstance(action, SendSettled):
                self._settle(action)
            elif isinstance(action, FetchKeys):
                self._spawn(self._fetch_keys(action, self.generation))
            elif isinstance(action, TopUpKeys):
                self._spawn(self._top_up_keys())
            elif isinstance(action, FetchGroup):
                self._spawn(self._fetch_group(action.group_id, self.generation))
            elif isinstance(action, RotateStateKey):
                self._spawn(self._rotate_state_key(action.group_id))
            elif isinstance(action, ShareStateKey):
                if self._share is not None:
                    self._share(action.group_id)
            elif isinstance(action, Reconnect):
                self._reconnect = action.reason
            elif isinstance(action, (ClaimKeys, PauseOutbox)):  # only the outbox asks these
                raise AssertionError(f"{type(action).__name__} outside the outbox")
        return frames

    async def execute(self, actions: list[Action], ws: WebSocketLike) -> None:
        for frame in self.perform(actions):
            await ws.send(orjson.dumps(frame.frame).decode())
        if self._reconnect is not None:
            reason, self._reconnect = self._reconnect, None
            raise ConnectionClosed(None, reason)

    async def _fetch_keys(self, fetch: FetchKeys, generation: int) -> None:
        try:
            bundle = await self._api().get_keys(fetch.account)
        except ClientError as exc:
            actions = self._core.keys_fetch_failed(fetch.account, fetch.token, exc)
        except Exception as exc:  # an answer that is no key bundle: asking again cannot help
            log.warning("unreadable keys of %s: %s", fetch.account[:8], type(exc).__name__)
            error = IdentityError(f"the key directory's answer could not be read ({exc!r:.80})")
            actions = self._core.keys_fetch_failed(fetch.account, fetch.token, error)
        else:
            actions = self._core.keys_fetched(fetch.account, fetch.token, bundle)
        # Acks and receipts wait in the core; the receiver flushes them (it polls while
        # envelopes are parked). Frames built for a connection that is gone are dropped.
        ws = self.ws
        for frame in self.perform(actions):
            if ws is None or generation != self.generation:
                break
            try:
                await ws.send(orjson.dumps(frame.frame).decode())
            except ConnectionClosed:
                break

    async def _fetch_group(self, group_id: str, generation: int) -> None:
        try:
            group = await GroupApi(self._api()).get(group_id)
        except ClientError as exc:
            actions = self._core.group_fetch_failed(group_id, exc)
        else:
            actions = self._core.group_fetched(group)
        await self._send_from_task(actions, generation)

    async def _rotate_state_key(self, group_id: str) -> None:
        if self._rotate is None:
            return
        try:
            await self._rotate(group_id)
        except ClientError as exc:  # another admin's device may have done it first
            log.info("group %s: no new state key: %s", group_id[:8], reason(exc))

    async def _send_from_task(self, actions: list[Action], generation: int) -> None:
        ws = self.ws
        for frame in self.perform(actions):
            if ws is None or generation != self.generation:
                break
            try:
                await ws.send(orjson.dumps(frame.frame).decode())
            except ConnectionClosed:
                break

    async def _top_up_keys(self) -> None:
        try:
            keys = self._core.one_time_keys(await self._api().key_count())
            if keys:
                await self._api().upload_keys(one_time_keys=keys)
        except ClientError as exc:
            log.warning("could not upload one-time keys: %s", reason(exc))

    async def send_now(self, frame: dict[str, Any]) -> bool:
        """Send a frame on the current connection, if there is one (typing)."""
        ws = self.ws
        if ws is None:
            return False
        try:
            await ws.send(orjson.dumps(frame).decode())
        except ConnectionClosed:
            return False
        return True

    # The connection ------------------------------------------------------------------------

    async def connection_loop(self) -> None:
        attempt = 0
        while True:
            try:
                ws = await self._transport.connect(self._ws_url)
            except ConnectionClosed as exc:
                log.info("connect failed: %s", exc.reason)
                self.connect_error = exc.reason
                attempt += 1
                await asyncio.sleep(backoff(attempt))
                continue
            try:
                ready = await self._authenticate(ws)
                attempt = 0
                self.connect_error = None
                self.generation += 1
                self.ws = ws
                self._reconnect = None
                actions = self._core.connected(ready)
                self.connected.set()
                self.outbox_wake.set()
                self._emit(ConnectionChanged(True))
                await self.execute(actions, ws)
                await self._read_loop(ws)
            except ConnectionClosed as exc:
                if exc.code == CloseCode.REPLACED:
                    self._emit(
                        ClientError(
                            "this device connected from somewhere else; this session ended",
                            code="replaced",
                        )
                    )
                    return
                if exc.code == CloseCode.AUTH:
                    self._emit(
                        ClientError(
                            "this device was removed, or its number was registered again "
                            "elsewhere; register again to use this profile",
                            code="revoked",
                        )
                    )
                    return
                log.info("connection lost (%s) %s", exc.code, exc.reason)
            except ClientError as exc:  # authentication refused: retrying cannot help
                self._emit(exc)
                return
            finally:
                self._core.disconnected()
                if self.ws is ws:
                    self.ws = None
                if self.connected.is_set():
                    self.connected.clear()
                    self._emit(ConnectionChanged(False))
                with contextlib.suppress(Exception):
                    await ws.close()
            attempt += 1
            await asyncio.sleep(backoff(attempt))

    async def _authenticate(self, ws: WebSocketLike) -> dict[str, Any]:
        await ws.send(orjson.dumps(self._core.auth_frame(self._password)).decode())
        try:
            async with asyncio.timeout(AUTH_TIMEOUT):
                frame = orjson.loads(await ws.recv())
        except TimeoutError:
            raise ConnectionClosed(None, "the server did not answer the auth frame") from None
        except orjson.JSONDecodeError:
            raise ConnectionClosed(None, "the server's first frame is not JSON") from None
        if not isinstance(frame, dict):
            raise ConnectionClosed(None, "the server's first frame is not an object")
        if frame.get("type") == "error":
            raise ServerError(str(frame.get("code")), str(frame.get("message")))
        if frame.get("type") != "ready":
            raise ConnectionClosed(None, f"unexpected first frame {frame.get('type')!r}")
        return frame

    async def _read_loop(self, ws: WebSocketLike) -> None:
        core = self._core
        while True:
            if core.wants_flush or self._reconnect is not None:
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                    # cancellation that lands as recv completes, and the client would then
                    # never stop (the task group waits for this loop for ever).
                    async with asyncio.timeout(ACK_DELAY):
                        raw = await ws.recv()
                except TimeoutError:
                    await self.execute(core.flush(), ws)
                    continue
            else:
                raw = await ws.recv()
            try:
                frame = orjson.loads(raw)
            except orjson.JSONDecodeError:
                frame = None
            if not isinstance(frame, dict):
                log.warning("ignored a malformed frame from the server")
                continue
            await self.execute(core.receive(frame), ws)

    # The outbox ----------------------------------------------------------------------------

    async def outbox_loop(self) -> None:
        core = self._core
        while True:
            await self.connected.wait()
            ws, generation = self.ws, self.generation
            items = core.next_outbox_items() if ws is not None else []
            if not items or ws is None:
                self.outbox_wake.clear()
                await self.outbox_wake.wait()
                continue
            for item in items:
                if generation != self.generation:
                    break
                actions = core.prepare(item)
                # One claim per account (the recipient, one's own for sent copies); an
                # answer may ask for one more (one's own devices listed, then claimed).
                claims = [a for a in actions if isinstance(a, ClaimKeys)]
                actions = [a for a in actions if not isinstance(a, ClaimKeys)]
                while claims:
                    claim = claims.pop(0)
                    devices = list(claim.devices) if claim.devices is not None else None
                    try:
                        if claim.listing:
                            bundle = await self._api().get_keys(claim.account)
                        else:
                            bundle = await self._api().claim_keys(claim.account, devices)
                    except ClientError as exc:
                        result = core.keys_claim_failed(claim, exc)
                    else:
                        result = core.keys_claimed(claim, bundle)
                    claims += [a for a in result if isinstance(a, ClaimKeys)]
                    actions += [a for a in result if not isinstance(a, ClaimKeys)]
                if not await self._send_prepared(actions, ws, generation):
                    break

    async def _send_prepared(
        self, actions: list[Action], ws: WebSocketLike, generation: int
    ) -> bool:
        """Send an item's frame; False to end this pass of the outbox."""
        pause = next((a for a in actions if isinstance(a, PauseOutbox)), None)
        frames = self.perform([a for a in actions if not isinstance(a, PauseOutbox)])
        if pause is not None:
            await asyncio.sleep(pause.delay)
            return False
        for frame in frames:
            if generation != self.generation:
                if frame.client_id is not None:
                    self._core.not_sent(frame.client_id)
                return False
            try:
                await ws.send(orjson.dumps(frame.frame).decode())
            except ConnectionClosed:
                return False  # the reconnect sends everything still in the outbox again
        return True
