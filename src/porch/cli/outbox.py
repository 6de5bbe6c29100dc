"""`porch outbox`: list, cancel and retry what is queued, paused or failed in a profile's outbox.

Paused items wait for a verified contact's changed key to be accepted (`porch verify`).

It never connects, so listing or cancelling cannot itself send what it is about to cancel. An
item that the process owning the connection has already handed to the server may still arrive
(docs/design.md, "Failed sends").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from porch.cli.exits import Exit
from porch.cli.text import printable

if TYPE_CHECKING:  # the SDK is imported when the command runs (porch.cli.main, lazy start-up)
    from porch.client import Client

Common = Callable[[argparse.ArgumentParser], None]
Sync = Callable[
    [Callable[[argparse.Namespace], Coroutine[Any, Any, int]]],
    Callable[[argparse.Namespace], int],
]
PREVIEW = 40


def add_parser(sub: Any, common: Common, sync: Sync) -> None:
    p = sub.add_parser("outbox", help="list, cancel or retry messages that are not sent yet")
    common(p)
    p.add_argument(
        "action", nargs="?", choices=("list", "cancel", "retry"), default="list", help="list"
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="message ids (from porch outbox)")
    p.add_argument("--all", action="store_true", help="with cancel: every queued or failed one")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=sync(outbox))


def _age(ms: int) -> str:
    seconds = max(0, int(time.time() - ms / 1000))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


async def outbox(args: argparse.Namespace) -> int:
    from porch.client import Client

    client = Client(args.profile, server=args.server)
    try:
        if args.action == "cancel":
            if not args.ids and not args.all:
                print("porch: outbox cancel needs message ids or --all", file=sys.stderr)
                return Exit.USAGE
            removed = client.cancel(None if args.all else list(args.ids))
            missing = sorted(set(args.ids) - set(removed))
            for cid in removed:
                print(f"cancelled {cid}")
            for cid in missing:
                print(f"porch: no queued or failed message {printable(cid)}", file=sys.stderr)
            return 1 if missing else 0
        if args.action == "retry":
            failed = [cid for cid in args.ids if not client.retry(cid)]
            for cid in failed:
                print(f"porch: no failed message {printable(cid)}", file=sys.stderr)
            return 1 if failed or not args.ids else 0
        _list(client, args.json)
        return 0
    finally:
        await client.aclose()


def _list(client: Client, as_json: bool) -> None:
    from porch.crypto.content import Text, decode_content

    for entry in client.outbox():
        try:
            content = decode_content(entry.content)
        except (ValueError, KeyError):
            content = None
        text = content.body if isinstance(content, Text) else None
        record = {
            "id": entry.client_id,
            "to": entry.recipient,
            "to_label": client.label(entry.recipient),
            "kind": "text" if text is not None else "receipt",
            "state": entry.state,
            "created": entry.created,
            "error_code": entry.error_code,
            "error": entry.error,
        }
        if as_json:
            print(json.dumps(record, ensure_ascii=False))
            continue
        preview = "" if text is None else printable(text.replace("\n", " ")[:PREVIEW])
        error = (
            f"  {printable(entry.error or '')} ({entry.error_code})"
            if entry.state in ("failed", "paused")
            else ""
        )
        print(
            f"{entry.client_id}  {entry.state:<6}  {_age(entry.created):>4}  "
            f"{printable(str(record['to_label'])):<16}  "
            f"{preview or '(' + str(record['kind']) + ')'}{error}"
        )
