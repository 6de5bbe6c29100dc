"""`porch link` (this machine becomes a new device of an account) and `porch devices`
(list, link another device, remove one, leave: this device signs out). Spec C;
docs/protocol.md section 7, "Linking a device".

The new device shows a ``porch://link`` URI and its QR code and waits (at most ten minutes,
the server's channel lifetime); on a device of the account, `porch devices link URI` gives it
the account's keys. Errors reach the boundary in porch.cli.main; names others chose go
through ``printable``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from porch.cli.exits import Exit, bounded
from porch.cli.text import printable

Common = Callable[[argparse.ArgumentParser], None]
Sync = Callable[
    [Callable[[argparse.Namespace], Coroutine[Any, Any, int]]],
    Callable[[argparse.Namespace], int],
]
MAX_DEVICE_ID = 2**31 - 1


def add_parsers(sub: Any, common: Common, sync: Sync) -> None:
    p = sub.add_parser(
        "link",
        help="make this machine a new device of your account (approve it on another device)",
        description="Shows a porch://link URI and a QR code; on a device of your account run "
        "`porch devices link URI` to approve it. Waits up to ten minutes.",
    )
    common(p)
    p.add_argument("--name", default="", help="a name for this device")
    p.add_argument("--timeout", type=bounded(float, 1, 600), default=600.0, help=argparse.SUPPRESS)
    p.set_defaults(func=sync(link))

    p = sub.add_parser("devices", help="list, link or remove this account's devices")
    common(p)
    listing = sync(list_devices)
    p.set_defaults(func=listing)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    q = actions.add_parser("list", help="list this account's devices (also with no ACTION)")
    common(q)
    q.set_defaults(func=listing)  # the help says "list": `porch devices list` was refused
    q = actions.add_parser("link", help="give a new device (its porch://link URI) your keys")
    common(q)
    q.add_argument("uri", help="the porch://link?... text the new device shows")
    q.add_argument("--yes", action="store_true", help="link without asking")
    q.set_defaults(func=sync(approve))
    q = actions.add_parser("remove", help="remove a device: its access ends at once")
    common(q)
    q.add_argument("id", type=bounded(int, 1, MAX_DEVICE_ID), help="the device id")
    q.add_argument("--yes", action="store_true", help="remove without asking")
    q.set_defaults(func=sync(remove))
    q = actions.add_parser(
        "leave",
        help="sign out: remove this device from your account and erase its profile",
        description="Removes this device from your account (your other devices keep "
        "everything) and deletes this profile's history and keys. The account's only "
        "device cannot leave.",
    )
    common(q)
    q.add_argument("--yes", action="store_true", help="leave without asking")
    q.set_defaults(func=sync(leave))


def _confirm(question: str, yes: bool) -> bool:
    from porch.cli.commands import _interruptible
    from porch.client.errors import UsageError

    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{question} Pass --yes to confirm from a script")
    answer = _interruptible(lambda: input(f"{question} Type yes to continue: "))
    return answer.strip().lower() == "yes"


async def link(args: argparse.Namespace) -> int:
    import asyncio

    from porch.client import Client
    from porch.client.errors import UsageError
    from porch.crypto.provisioning_uri import qr_text

    if not args.server:
        raise UsageError("porch link needs --server URL: the server your account is on")
    if (args.profile / "profile.json").exists():
        raise UsageError(f"{args.profile} holds a profile already; link into another --profile DIR")
    ticker: asyncio.Task[None] | None = None

    def show(uri: str) -> None:
        nonlocal ticker
        print("On a device of your account, run:\n")
        print(f"  porch devices link '{uri}'\n")
        print("or scan this code:\n")
        print(qr_text(uri))
        sys.stdout.flush()
        ticker = asyncio.create_task(_tick(args.timeout))

    try:
        config = await Client.link(
            args.server, args.profile, name=args.name, show_uri=show, timeout=args.timeout
        )
    finally:
        if ticker is not None:
            ticker.cancel()
        print(file=sys.stderr)
    handle = f" (@{config.username})" if config.username else ""
    print(
        f"Linked as device {config.device_id} of {printable(config.phone)}{printable(handle)}, "
        f"account {config.account_id}, in {args.profile}."
    )
    return int(Exit.OK)


async def _tick(total: float) -> None:
    """One progress line on standard error, rewritten every second, while waiting."""
    import asyncio
    import time

    end = time.monotonic() + total
    while True:
        left = max(0, int(end - time.monotonic()))
        line = f"Waiting for approval... {left // 60}:{left % 60:02d} left (Ctrl-C cancels)"
        if sys.stderr.isatty():
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        elif left == int(total):  # once, when not a terminal
            print(line, file=sys.stderr, flush=True)
        await asyncio.sleep(1)


async def list_devices(args: argparse.Namespace) -> int:
    from porch.cli.commands import _client

    client = _client(args)
    try:
        for d in await client.devices():
            me = " (this device)" if d["device_id"] == client.device_id else ""
            seen = datetime.fromtimestamp(d["last_seen_day"] * 86400, UTC).date()
            name = printable(d["name"] or "-")
            print(f"{d['device_id']:>3}  {name:<20} last seen {seen}{me}")
    finally:
        await client.aclose()
    return int(Exit.OK)


async def approve(args: argparse.Namespace) -> int:
    from porch.cli.commands import _client
    from porch.client.linking import parse_link_uri

    uri = parse_link_uri(args.uri)  # a malformed URI is refused before anything else
    name = printable(uri.name or "unnamed")
    question = f"Link a new device '{name}'? This gives it your account's keys."
    if not _confirm(question, args.yes):
        print("Nothing was linked.")
        return int(Exit.FAILED)
    client = _client(args)
    try:
        await client.link_device(args.uri)
    finally:
        await client.aclose()
    print(f"Sent your account's keys to '{name}'; it finishes linking by itself.")
    return int(Exit.OK)


async def remove(args: argparse.Namespace) -> int:
    from porch.cli.commands import _client
    from porch.client.errors import UsageError

    client = _client(args)
    try:
        if args.id == client.device_id:
            raise UsageError(
                f"device {args.id} is this device; to sign it out, run `porch devices leave` "
                "(or remove it from another device)"
            )
        question = f"Remove device {args.id}? It can no longer read or send your messages."
        if not _confirm(question, args.yes):
            print("Nothing was removed.")
            return int(Exit.FAILED)
        await client.remove_device(args.id)
    finally:
        await client.aclose()
    print(f"Removed device {args.id}; your contacts will stop encrypting to it.")
    return int(Exit.OK)


async def leave(args: argparse.Namespace) -> int:
    """Sign out (the browser's "Sign out"): the server removes this device, then the profile
    is erased. Not while another porch process owns the profile: it would go on as a device
    that no longer exists, over a deleted database (ownership.py)."""
    import contextlib

    from porch.cli.commands import _client
    from porch.client.errors import ClientCode, ProfileError, ServerError, UsageError
    from porch.client.linking import ONLY_DEVICE
    from porch.client.ownership import ProfileLock
    from porch.client.profile import erase_profile

    lock = ProfileLock(args.profile)
    with contextlib.suppress(OSError):  # a read-only or missing profile fails just below
        if args.profile.is_dir() and not lock.try_acquire():
            raise ProfileError(
                f"the profile {args.profile} is in use by another porch process (porch chat "
                "or porch recv, say); close it, then leave again",
                code=ClientCode.PROFILE_LOCKED,
            )
    gone = False  # the server no longer knows this device (removed from another one)
    try:
        client = _client(args)
        device, phone = client.device_id, client.config.phone
        try:
            question = (
                f"Remove this device ({device}) from {printable(phone)} and erase "
                f"{args.profile}? Its history and keys are deleted; your other devices keep "
                "theirs."
            )
            if not _confirm(question, args.yes):
                print("Nothing was changed.")
                return int(Exit.FAILED)
            await client.leave()
        except ServerError as exc:
            if exc.code == "auth_failed":  # removed from another device already: only erase
                gone = True
            elif exc.code == "forbidden":
                raise UsageError(ONLY_DEVICE) from None
            else:
                raise
        finally:
            await client.aclose()
        try:
            erase_profile(args.profile)
        except ProfileError as exc:
            raise ProfileError(
                f"device {device} left the account, but {args.profile} could not be erased "
                f"({exc}); delete it by hand"
            ) from None
    finally:
        lock.release()
    # The server says only "unknown device or wrong password": removed is by far the likelier.
    done = (
        "is no longer accepted by the server (removed from another device; if `porch devices` "
        "there still lists it, remove it there)"
        if gone
        else "left the account"
    )
    print(
        f"Device {device} {done}, and {args.profile} was erased. To use Porch here again, run "
        "`porch link` (or `porch register`)."
    )
    return int(Exit.OK)
