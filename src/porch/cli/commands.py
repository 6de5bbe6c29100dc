"""Client commands: register, send, recv, devices, block, unblock, whoami (outbox: outbox.py).

Several commands may run on one profile at once (docs/design.md, "Several processes on one
profile"): the first owns the connection and the others relay through it, so none kicks
another off."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from porch.client import (
    Client,
    ClientError,
    DecryptionFailed,
    Drained,
    IdentityChanged,
    Message,
    ReceiptEvent,
    retry,
)
from porch.client.errors import SendFailed, Timeout
from porch.client.profile import default_profile_dir
from porch.client.shared import ReceivedMessage

# sysexits.h EX_TEMPFAIL: the message is in the outbox and goes out on a later connection.
EXIT_QUEUED = 75
QUEUED_HINT = (
    "queued: will be retried the next time this profile connects (porch outbox to see or cancel)"
)

Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="profile directory (PORCH_PROFILE; default: the per-user data directory)",
    )
    p.add_argument("--server", help="server URL for this run (overrides the profile's)")


def add_parsers(sub: Sub) -> None:
    p = sub.add_parser("register", help="register this device with a phone number")
    _common(p)
    p.add_argument("--phone", required=True, help="E.164 number, like +14155550100")
    p.add_argument("--name", default="", help="a name for this device")
    p.add_argument("--username", help="also claim this @username")
    p.set_defaults(func=_sync(register))

    p = sub.add_parser("send", help="send a text message; exits 0 once the server has it")
    _common(p)
    p.add_argument("--to", required=True, help="+NUMBER, @USERNAME or an account id")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server")
    p.add_argument("text", nargs="+", help="the message")
    p.set_defaults(func=_run_send)

    p = sub.add_parser("recv", help="print messages received, acknowledging them")
    _common(p)
    p.add_argument("--wait", type=float, default=2.0, help="exit after this many idle seconds")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_sync(recv))

    p = sub.add_parser("devices", help="list this account's devices")
    _common(p)
    p.set_defaults(func=_sync(devices))

    p = sub.add_parser("whoami", help="show this profile's account")
    _common(p)
    p.set_defaults(func=_sync(whoami))

    for name, blocked in (("block", True), ("unblock", False)):
        p = sub.add_parser(name, help=f"{name} an account (+NUMBER, @USERNAME or id)")
        _common(p)
        p.add_argument("who")
        p.set_defaults(func=_sync(block), blocked=blocked)

    from porch.cli import outbox  # here, so that main.py needs no change for it

    outbox.add_parser(sub, _common, _sync)


def _sync(
    fn: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        if getattr(args, "profile", None) is None:
            args.profile = default_profile_dir()
        try:
            return asyncio.run(fn(args))
        except ClientError as exc:
            print(f"porch: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130

    return run


def _client(args: argparse.Namespace) -> Client:
    return Client(args.profile, server=args.server)


async def register(args: argparse.Namespace) -> int:
    if not args.server:
        print("porch: register needs --server URL (e.g. http://127.0.0.1:8000)", file=sys.stderr)
        return 2

    async def read_code() -> str:
        if sys.stdin.isatty():
            return await asyncio.to_thread(getpass.getpass, "Verification code: ")
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            raise ClientError("no verification code on standard input")
        return str(line).strip()

    def progress(message: str) -> None:
        print(message, file=sys.stderr)

    config = await Client.register(
        args.server,
        args.phone,
        read_code,
        args.profile,
        name=args.name,
        username=args.username,
        progress=progress,
    )
    handle = f" (@{config.username})" if config.username else ""
    print(
        f"Registered {config.phone}{handle} as account {config.account_id}, "
        f"device {config.device_id}."
    )
    print(f"Profile: {Path(args.profile).resolve()}")
    return 0


def _run_send(args: argparse.Namespace) -> int:
    # Three outcomes, three exit codes: 0 sent (the server has it), 75 queued (it stays in the
    # outbox: a timeout, a server that is down, Ctrl-C after queueing), 1 failed (refused for
    # good; it stays in the outbox as failed and is never sent by itself).
    queued: list[str] = []
    try:
        code = _sync(lambda a: send(a, queued))(args)
    except KeyboardInterrupt:
        code = 130
    if code == 130 and queued:  # interrupted after the message was stored
        print(f"porch: {QUEUED_HINT}", file=sys.stderr)
        return EXIT_QUEUED
    return code


async def send(args: argparse.Namespace, queued: list[str] | None = None) -> int:
    queued = [] if queued is None else queued
    async with _client(args) as client:
        pending = await client.send_text(args.to, " ".join(args.text), wait=False)
        queued.append(pending.id)  # durable from here on: a crash or Ctrl-C leaves it queued
        try:
            result = await client.wait_sent(pending.id, timeout=args.timeout)
        except Timeout:
            print(
                f"porch: the server did not acknowledge {pending.id} within {args.timeout} s;"
                f" {QUEUED_HINT}",
                file=sys.stderr,
            )
            return EXIT_QUEUED
        except SendFailed as exc:
            print(f"porch: failed: {exc} ({exc.code})", file=sys.stderr)
            return 1
        await client.flush(timeout=2.0)  # delivery receipts it owes others go out too
    print(f"sent {result.id} at {_iso(result.ts)}", file=sys.stderr)
    return 0


async def recv(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        # First what earlier commands received and nobody has shown (a `porch send` stores
        # what it receives while it waits), even with the server down; then what arrives.
        await _print_unshown(client, args.json)
        await client.wait_connected(timeout=max(args.wait, 10.0))
        drained = not client.owner  # a relay has no backlog of its own to wait for
        while True:
            # Until the backlog is drained, wait as long as a reconnect could take.
            event = await client.next_event(args.wait if drained else max(args.wait, 10.0))
            if event is None:
                break
            if isinstance(event, Drained):
                drained = True
            elif isinstance(event, Message | IdentityChanged | DecryptionFailed):
                # Each of these wrote a line into the history first (a message, a notice, a
                # placeholder): printed from there, once, whichever command gets to it.
                await _print_unshown(client, args.json)
            elif isinstance(event, ReceiptEvent) and args.json:
                print(
                    json.dumps(
                        {"receipt": event.kind, "from": event.sender, "ids": list(event.ids)}
                    )
                )
        await client.flush(timeout=5.0)
    return 0


async def _print_unshown(client: Client, as_json: bool) -> None:
    while batch := client.unshown():  # in batches: a long backlog is not decrypted at once
        for m in batch:
            # Claimed before printing: of two commands printing at once, exactly one prints it.
            if client.claim_shown(m.row):
                _print_message(m, await client.name_of(m.peer), as_json)


def _print_message(m: ReceivedMessage, label: str, as_json: bool) -> None:
    if as_json:
        record: dict[str, Any] = {"from": m.peer, "from_label": label, "device": m.sender_device}
        if m.status == retry.NOTICE:  # the safety number changed
            record |= {"event": "identity_changed", "account": m.peer, "text": m.text}
        elif m.status == retry.UNDECRYPTABLE:  # a message was lost; maybe a resend comes
            asked = m.text.endswith(retry.ASKED_TO_RESEND)
            record |= {"event": "undecryptable", "retry_requested": asked, "text": m.text}
            record["server_ts"] = m.server_ts or m.ts
        else:
            record |= {"text": m.text, "id": m.client_id, "ts": m.ts, "server_ts": m.server_ts}
        print(json.dumps(record, ensure_ascii=False), flush=True)
    elif m.status in (retry.NOTICE, retry.UNDECRYPTABLE):
        print(f"! {m.text}", flush=True)
    else:
        print(f"[{_iso(m.ts)}] {label}: {m.text}", flush=True)


async def devices(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        for d in await client.api.devices():
            me = " (this device)" if d["device_id"] == client.device_id else ""
            seen = datetime.fromtimestamp(d["last_seen_day"] * 86400, UTC).date()
            print(f"{d['device_id']:>3}  {d['name'] or '-':<20} last seen {seen}{me}")
    return 0


async def whoami(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        me = await client.api.me()
    print(f"account   {me['account_id']}")
    print(f"device    {me['device_id']}")
    print(
        f"phone     {me['phone']} ({'discoverable' if me['discoverable'] else 'not discoverable'})"
    )
    print(f"username  {'@' + me['username'] if me['username'] else '-'}")
    print(f"server    {args.server or client.config.server}")
    return 0


async def block(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        account_id = await client.block(args.who, args.blocked)
        name = await client.name_of(account_id)
    print(f"{'Blocked' if args.blocked else 'Unblocked'} {name}.")
    return 0


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="seconds")
