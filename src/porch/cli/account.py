"""Account commands: whoami, block, unblock (moved out of commands.py, which keeps register,
send and recv)."""

from __future__ import annotations

import argparse
from typing import Any

from porch.cli.devices import Common, Sync
from porch.cli.text import printable


def add_parsers(sub: Any, common: Common, sync: Sync) -> None:
    p = sub.add_parser("whoami", help="show this profile's account")
    common(p)
    p.set_defaults(func=sync(whoami))

    for name, blocked in (("block", True), ("unblock", False)):
        p = sub.add_parser(name, help=f"{name} an account (+NUMBER, @USERNAME or id)")
        common(p)
        p.add_argument("who")
        p.set_defaults(func=sync(block), blocked=blocked)


async def whoami(args: argparse.Namespace) -> int:
    from porch.cli.commands import _client

    async with _client(args) as client:
        me = await client.api.me()
    print(f"account   {printable(str(me['account_id']))}")
    print(f"device    {me['device_id']}")
    phone, discoverable = printable(str(me["phone"])), bool(me["discoverable"])
    print(f"phone     {phone} ({'discoverable' if discoverable else 'not discoverable'})")
    print(f"username  {printable('@' + me['username']) if me['username'] else '-'}")
    print(f"server    {printable(args.server or client.config.server)}")
    return 0


async def block(args: argparse.Namespace) -> int:
    from porch.cli.commands import _client

    async with _client(args) as client:
        account_id = await client.block(args.who, args.blocked)
        name = await client.name_of(account_id)
    print(f"{'Blocked' if args.blocked else 'Unblocked'} {printable(name)}.")
    return 0
