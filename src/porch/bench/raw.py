"""A raw protocol client for benchmarks and tests: frames in, frames out, no crypto.

:func:`provision` registers accounts through the HTTP API the way a real client does (code by
SMS, verify, upload identity keys), reading codes from the console SMS provider's outbox, so it
only works against a server run with ``PORCH_SMS_PROVIDER=console`` (the default) and raised
rate limits. :class:`RawConnection` speaks the WebSocket protocol with plain dicts, written by
the builders of porch.protocol.client_frames.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from porch.client.transport import MAX_RECEIVE_BYTES
from porch.crypto import MasterKey, OlmMachine, OneTimeKey
from porch.protocol import client_frames as cf

E164_US_LEN = 12  # "+1" and ten digits
PROGRESS_FROM = 50  # report progress on stderr from this many devices on
CODE_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class RawDevice:
    account_id: str
    device_id: int
    registration_id: int
    password: str


class RawConnection:
    """One authenticated WebSocket session. Use :meth:`open`, then send/receive dicts."""

    def __init__(self, ws: ClientConnection, ready: dict[str, Any]) -> None:
        self._ws = ws
        self.ready = ready

    @classmethod
    async def open(
        cls,
        ws_url: str,
        account: str,
        device: int,
        password: str,
        open_timeout: float = 15.0,
        *,
        local_addr: tuple[str, int] | None = None,
        ping_interval: float | None = 20.0,
        batch: bool = False,
        to: str | None = None,
    ) -> RawConnection:
        """Connect to ``ws://host:port/v1/ws`` and authenticate; raise if not answered ready.

        ``local_addr`` binds the client socket (e.g. ``("127.0.0.5", 0)``: one source address
        has only ~28k ephemeral ports toward one server port). ``ping_interval=None`` leaves
        heartbeats to the server, which answers are sent for automatically. ``to`` (the bare
        relay only, bare_relay.py) names the account every later frame is forwarded to.
        """
        extra: dict[str, Any] = {} if local_addr is None else {"local_addr": local_addr}
        ws = await connect(
            ws_url,
            compression=None,
            max_size=MAX_RECEIVE_BYTES,  # the SDK's limit, from the server's promise
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            **extra,
        )
        hello = cf.auth(account, device, password, batch)
        if to is not None:
            hello["to"] = to
        try:
            await ws.send(orjson.dumps(hello).decode())
            ready = orjson.loads(await asyncio.wait_for(ws.recv(), open_timeout))
        except BaseException:
            await ws.close()
            raise
        if not isinstance(ready, dict) or ready.get("type") != "ready":
            await ws.close()
            raise ConnectionError(f"authentication refused: {ready!r}")
        return cls(ws, ready)

    @classmethod
    async def for_device(
        cls,
        ws_url: str,
        device: RawDevice,
        *,
        local_addr: tuple[str, int] | None = None,
        ping_interval: float | None = 20.0,
        batch: bool = False,
        to: str | None = None,
    ) -> RawConnection:
        return await cls.open(
            ws_url,
            device.account_id,
            device.device_id,
            device.password,
            local_addr=local_addr,
            ping_interval=ping_interval,
            batch=batch,
            to=to,
        )

    @property
    def closed(self) -> bool:
        """True once the WebSocket is closing or closed (by either side)."""
        return self._ws.close_code is not None

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self._ws.send(orjson.dumps(frame).decode())

    async def recv_frame(self) -> dict[str, Any]:
        frame = orjson.loads(await self._ws.recv())
        if not isinstance(frame, dict):
            raise ValueError(f"server sent a non-object frame: {frame!r}")
        return frame

    async def close(self) -> None:
        await self._ws.close()


class SmsOutbox:
    """Tails <data-dir>/sms-outbox.jsonl; several registrations wait on it at once.

    One poller task reads the file while anybody waits, and hands each code to its waiter.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._codes: dict[str, str] = {}
        self._waiters: dict[str, asyncio.Future[str]] = {}
        self._poller: asyncio.Task[None] | None = None

    def _scan(self) -> None:
        try:
            with self._path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # only whole lines; the rest is read next time
        for line in data[:end].splitlines():
            if line.strip():
                entry = json.loads(line)
                self._codes[str(entry["phone"])] = str(entry["code"])
        self._offset += end
        for phone in [p for p in self._waiters if p in self._codes]:
            waiter = self._waiters.pop(phone)
            if not waiter.done():
                waiter.set_result(self._codes.pop(phone))

    async def _poll(self) -> None:
        while self._waiters:
            self._scan()
            await asyncio.sleep(0.005)
        self._poller = None

    async def code_for(self, phone: str) -> str:
        code = self._codes.pop(phone, None)
        if code is not None:
            return code
        waiter = self._waiters.get(phone)
        if waiter is None:
            waiter = self._waiters[phone] = asyncio.get_running_loop().create_future()
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), CODE_TIMEOUT)
        except TimeoutError:
            self._waiters.pop(phone, None)
            raise TimeoutError(f"no code for {phone} appeared in {self._path}") from None


def _phones(prefix_number: str, n: int) -> list[str]:
    digits = E164_US_LEN - len(prefix_number)
    if not prefix_number.startswith("+") or digits < 1 or n > 10**digits:
        raise ValueError(f"prefix {prefix_number!r} leaves room for fewer than {n} numbers")
    return [f"{prefix_number}{i:0{digits}d}" for i in range(n)]


class _Http:
    """A minimal HTTP/1.1 keep-alive client for JSON POSTs: registering thousands of devices
    through httpx's connection pool costs more client CPU than the server spends on them."""

    def __init__(self, base_url: str) -> None:
        rest = base_url.split("://", 1)[-1].rstrip("/")
        host, _, port = rest.partition(":")
        self._host, self._port = host, int(port or 80)
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(
        self, path: str, body: dict[str, Any], method: str = "POST", auth: str = ""
    ) -> tuple[int, Any]:
        """``auth``: the value of an Authorization header, if any."""
        for attempt in range(2):
            if self._streams is None:
                self._streams = await asyncio.open_connection(self._host, self._port)
            reader, writer = self._streams
            data = orjson.dumps(body)
            extra = f"Authorization: {auth}\r\n" if auth else ""
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n{extra}"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            )
            try:
                writer.write(head.encode() + data)
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionError("server closed the connection")
                status = int(status_line.split()[1])
                length, close = 0, False
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and value.strip().lower() == "close":
                        close = True
                payload = await reader.readexactly(length) if length else b""
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.aclose()
                if attempt:
                    raise
                continue
            if close:
                await self.aclose()
            return status, orjson.loads(payload) if payload else None
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _register_fast(
    http: _Http, outbox: SmsOutbox, phone: str, keys: bool = False
) -> RawDevice:
    """Request a code and verify it on a keep-alive connection; with ``keys``, upload identity,
    one-time and fallback keys on it too (an httpx client per registration cost the driver
    more CPU than the server spends on it: 9 registrations/s with keys)."""
    status, body = await http.post("/v1/registration/code", {"phone": phone})
    if status >= 400:
        raise RuntimeError(f"code request for {phone} failed: HTTP {status} {body!r:.200}")
    session_id = str(body["session_id"])
    code = await outbox.code_for(phone)
    status, body = await http.post(
        "/v1/registration/verify", {"session_id": session_id, "code": code, "name": "bench"}
    )
    if status >= 400:
        raise RuntimeError(f"verify for {phone} failed: HTTP {status} {body!r:.200}")
    device = RawDevice(
        str(body["account_id"]),
        int(body["device_id"]),
        int(body["registration_id"]),
        str(body["password"]),
    )
    if keys:
        status, body = await http.post("/v1/keys", _key_upload(device), "PUT", _basic(device))
        if status >= 400:
            raise RuntimeError(f"key upload for {phone} failed: HTTP {status} {body!r:.200}")
    return device


def _otk(key: OneTimeKey) -> dict[str, str]:
    return {"key_id": key.key_id, "curve25519": key.curve25519, "signature": key.signature}


def _basic(device: RawDevice) -> str:
    user = f"{device.account_id}.{device.device_id}:{device.password}"
    return "Basic " + base64.b64encode(user.encode()).decode()


def _key_upload(device: RawDevice) -> dict[str, Any]:
    """PUT /v1/keys body: identity signed by a new master key, 5 one-time keys, a fallback."""
    machine = OlmMachine.create(pickle_key=os.urandom(32))
    master = MasterKey.generate()
    signature = master.sign_device(
        device.account_id,
        device.device_id,
        device.registration_id,
        machine.curve25519,
        machine.ed25519,
    )
    return {
        "identity": {
            "master_key": master.public_b64,
            "curve25519": machine.curve25519,
            "ed25519": machine.ed25519,
            "signature": signature,
        },
        "one_time_keys": [_otk(k) for k in machine.generate_one_time_keys(5)],
        "fallback_key": _otk(machine.generate_fallback_key()),
    }


async def provision(
    base_url: str,
    data_dir: str | Path,
    n: int,
    prefix_number: str = "+1415555",
    concurrency: int = 8,
    *,
    keys: bool = True,
) -> list[RawDevice]:
    """Register ``n`` accounts (one device each) on phones ``prefix_number`` + digits.

    With ``keys`` (the default) each device uploads identity keys, one-time keys and a fallback
    key, as a real client does; ``keys=False`` stops after verification (enough to connect).
    Each of the ``concurrency`` workers registers on its own keep-alive HTTP connection.
    ``data_dir`` is the server's data directory, where the console SMS provider writes codes.
    Needs a fresh server (or unused numbers): a number that is registered again replaces its
    account. Returns the devices in phone-number order.
    """
    outbox = SmsOutbox(Path(data_dir) / "sms-outbox.jsonl")
    phones = _phones(prefix_number, n)
    done = 0
    show = n >= PROGRESS_FROM
    step = max(25, n // 100)
    started = time.monotonic()
    devices: dict[str, RawDevice] = {}
    todo = list(reversed(phones))

    async def worker() -> None:
        nonlocal done
        http = _Http(base_url)
        try:
            while todo:
                phone = todo.pop()
                devices[phone] = await _register_fast(http, outbox, phone, keys)
                done += 1
                if show and (done % step == 0 or done == n):
                    rate = done / max(1e-9, time.monotonic() - started)
                    print(
                        f"\rprovisioned {done}/{n} devices ({rate:.0f}/s)",
                        end="\n" if done == n else "",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            await http.aclose()

    async with asyncio.TaskGroup() as tg:
        for _ in range(max(1, min(concurrency, n))):
            tg.create_task(worker())
    return [devices[p] for p in phones]
