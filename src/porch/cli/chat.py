"""`porch chat`: the interactive terminal chat (a Textual app, porch.tui)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "chat",
        help="interactive chat in the terminal",
        description="Interactive chat: ctrl+n starts a conversation (or type /to @name), "
        "Enter sends, ctrl+q quits.",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        default=None,
        help="profile directory (PORCH_PROFILE; default: the per-user data directory)",
    )
    p.add_argument(
        "--server", metavar="URL", help="server URL for this run (overrides the profile's)"
    )
    p.add_argument(
        "--to",
        metavar="RECIPIENT",
        help="open a conversation with +NUMBER, @USERNAME or an account id",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from porch.client import Client
    from porch.client.profile import default_profile_dir
    from porch.tui import ChatApp  # Textual loads only for this command

    profile: Path = args.profile or default_profile_dir()
    client = Client(profile, server=args.server)  # errors: the boundary in porch.cli.main
    # The SDK logs warnings; with no handler Python would print them over the screen.
    logging.getLogger("porch").addHandler(logging.NullHandler())
    app = ChatApp(client, open_to=args.to)

    async def main() -> None:
        async with client:
            await app.run_async()

    asyncio.run(main())
    return app.return_code or 0
