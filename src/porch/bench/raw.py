"""A raw protocol client for benchmarks and tests: frames in, frames out, no crypto.

:func:`provision` registers accounts through the HTTP API the way a real client does (code by
SMS, verify, upload identity keys), reading codes from the console SMS provider's outbox, so it
only works against a server run with ``PORCH_SMS_PROVIDER=console`` (the default) and raised
rate limits. :class:`RawConnection` speaks the WebSocket protocol with plain dicts.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from porch.client.api import Credentials, HttpApi
from porch.crypto import MasterKey, OlmMachine

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
        cls, ws_url: str, account: str, device: int, password: str, open_timeout: float = 15.0
    ) -> RawConnection:
        """Connect to ``ws://host:port/v1/ws`` and authenticate; raise if not answered ready."""
        ws = await connect(ws_url, compression=None, max_size=4 << 20, open_timeout=open_timeout)
        try:
            await ws.send(
                orjson.dumps(
                    {"type": "auth", "account": account, "device": device, "password": password}
                ).decode()
            )
            ready = orjson.loads(await asyncio.wait_for(ws.recv(), open_timeout))
        except BaseException:
            await ws.close()
            raise
        if not isinstance(ready, dict) or ready.get("type") != "ready":
            await ws.close()
            raise ConnectionError(f"authentication refused: {ready!r}")
        return cls(ws, ready)

    @classmethod
    async def for_device(cls, ws_url: str, device: RawDevice) -> RawConnection:
        return await cls.open(ws_url, device.account_id, device.device_id, device.password)

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self._ws.send(orjson.dumps(frame).decode())

    async def recv_frame(self) -> dict[str, Any]:
        frame = orjson.loads(await self._ws.recv())
        if not isinstance(frame, dict):
            raise ValueError(f"server sent a non-object frame: {frame!r}")
        return frame

    async def close(self) -> None:
        await self._ws.close()


class _Outbox:
    """Tails <data-dir>/sms-outbox.jsonl; several registrations wait on it at once."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._codes: dict[str, str] = {}
        self._lock = asyncio.Lock()

    def _scan(self) -> None:
        if not self._path.exists():
            return
        with self._path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # only whole lines; the rest is read next time
        for line in data[:end].splitlines():
            if line.strip():
                entry = json.loads(line)
                self._codes[str(entry["phone"])] = str(entry["code"])
        self._offset += end

    async def code_for(self, phone: str) -> str:
        deadline = time.monotonic() + CODE_TIMEOUT
        while time.monotonic() < deadline:
            async with self._lock:
                code = self._codes.pop(phone, None)
                if code is None:
                    self._scan()
                    code = self._codes.pop(phone, None)
            if code is not None:
                return code
            await asyncio.sleep(0.01)
        raise TimeoutError(f"no code for {phone} appeared in {self._path}")


def _phones(prefix_number: str, n: int) -> list[str]:
    digits = E164_US_LEN - len(prefix_number)
    if not prefix_number.startswith("+") or digits < 1 or n > 10**digits:
        raise ValueError(f"prefix {prefix_number!r} leaves room for fewer than {n} numbers")
    return [f"{prefix_number}{i:0{digits}d}" for i in range(n)]


async def _register(base_url: str, outbox: _Outbox, phone: str) -> RawDevice:
    api = HttpApi(base_url)
    try:
        await api.request_code(phone)
        registered = await api.verify(phone, await outbox.code_for(phone), "bench")
    finally:
        await api.aclose()
    machine = OlmMachine.create(pickle_key=os.urandom(32))
    master = MasterKey.generate()
    signature = master.sign_device(
        registered.account_id,
        registered.device_id,
        registered.registration_id,
        machine.curve25519,
        machine.ed25519,
    )
    creds = Credentials(registered.account_id, registered.device_id, registered.password)
    api = HttpApi(base_url, creds)
    try:
        await api.upload_keys(
            identity={
                "master_key": master.public_b64,
                "curve25519": machine.curve25519,
                "ed25519": machine.ed25519,
                "signature": signature,
            },
            one_time_keys=machine.generate_one_time_keys(5),
            fallback_key=machine.generate_fallback_key(),
        )
    finally:
        await api.aclose()
    return RawDevice(
        registered.account_id, registered.device_id, registered.registration_id, registered.password
    )


async def provision(
    base_url: str,
    data_dir: str | Path,
    n: int,
    prefix_number: str = "+1415555",
    concurrency: int = 8,
) -> list[RawDevice]:
    """Register ``n`` accounts (one device each, with keys) on phones ``prefix_number`` + digits.

    ``data_dir`` is the server's data directory, where the console SMS provider writes codes.
    Needs a fresh server (or unused numbers): a number that is registered again replaces its
    account. Returns the devices in phone-number order.
    """
    outbox = _Outbox(Path(data_dir) / "sms-outbox.jsonl")
    phones = _phones(prefix_number, n)
    gate = asyncio.Semaphore(max(1, concurrency))
    done = 0
    show = n >= PROGRESS_FROM

    async def one(phone: str) -> RawDevice:
        nonlocal done
        async with gate:
            device = await _register(base_url, outbox, phone)
        done += 1
        if show and (done % 25 == 0 or done == n):
            print(
                f"\rprovisioned {done}/{n} devices",
                end="\n" if done == n else "",
                file=sys.stderr,
                flush=True,
            )
        return device

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(one(p)) for p in phones]
    return [t.result() for t in tasks]
